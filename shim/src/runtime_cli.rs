//! The runc-compatible runtime binary (berth by default) as a typed
//! client: one method per verb, each building its command line in one
//! place, with the global flags containerd's runc shim passes, and failures
//! turned into the last error line the runtime logged.

use crate::io::Stdio3;
use crate::options::CheckpointOptions;
use crate::reaper::Reaper;
use containerd_shim::protos::shim::oci::Options;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("run {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("{binary} {verb} failed: {message}")]
    Failed {
        binary: String,
        verb: String,
        message: String,
    },
    /// What `ps` or `events` printed is not the JSON they print.
    #[error(transparent)]
    Output(#[from] serde_json::Error),
}

impl RuntimeError {
    /// Whether the runtime said the container or process is gone, in the
    /// words runc uses and berth keeps.
    pub fn is_gone(&self) -> bool {
        match self {
            RuntimeError::Failed { message, .. } => {
                let m = message.to_lowercase();
                m.contains("not running") || m.contains("does not exist") || m.contains("finished")
            }
            RuntimeError::Spawn { .. } | RuntimeError::Output(_) => false,
        }
    }
}
/// The global flags of every command: `BinaryName`, `Root` and
/// `SystemdCgroup` as the container's options give them, and the log in
/// its bundle. Persisted in the bundle so that `shim delete`, a fresh
/// process, finds the same runtime.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GlobalOptions {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub log: PathBuf,
}

impl GlobalOptions {
    /// The root is per containerd namespace, under `Root` (or berth's
    /// default when the options leave it unset, as they leave `BinaryName`).
    pub fn new(options: &Options, namespace: &str, log: PathBuf) -> GlobalOptions {
        let root = match options.root.as_str() {
            "" => Path::new("/run/containerd/berth").join(namespace),
            root => Path::new(root).join(namespace),
        };
        GlobalOptions {
            binary: find_binary(&options.binary_name),
            root,
            systemd_cgroup: options.systemd_cgroup,
            log,
        }
    }
}

/// `create`'s options.
pub struct CreateOptions<'a> {
    pub bundle: &'a Path,
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

/// `checkpoint`'s options, as containerd's runc shim passes them.
pub struct CheckpointArgs<'a> {
    pub image_path: &'a Path,
    pub work_path: &'a Path,
    pub options: &'a CheckpointOptions,
}

/// `restore`'s: detached, no subreaper (the shim reaps), as containerd's
/// runc shim restores.
pub struct RestoreOptions<'a> {
    pub bundle: &'a Path,
    pub pid_file: &'a Path,
    pub image_path: &'a Path,
    pub work_path: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
}

/// `exec`'s options (it always detaches: the shim reaps the process).
pub struct ExecOptions<'a> {
    /// The runtime-spec process, as JSON.
    pub process: &'a Path,
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
}

/// The runtime binary, run with the global options; its commands are
/// waited for through the shim's reaper, which reaps every child.
pub struct Runtime {
    options: GlobalOptions,
    reaper: Arc<Reaper>,
}

/// One command line being built.
struct Call {
    verb: &'static str,
    cmd: Command,
}

impl Call {
    fn arg(mut self, arg: impl AsRef<OsStr>) -> Call {
        self.cmd.arg(arg);
        self
    }

    fn args(mut self, args: &[&str]) -> Call {
        self.cmd.args(args);
        self
    }

    fn flag(self, on: bool, flag: &str) -> Call {
        if on {
            self.arg(flag)
        } else {
            self
        }
    }

    fn option(self, name: &str, value: Option<&Path>) -> Call {
        match value {
            Some(value) => self.arg(name).arg(value),
            None => self,
        }
    }
}

/// What a command's stdio is.
enum Io<'a> {
    /// None in, stdout captured.
    Capture,
    /// `input` in, stdout captured.
    Feed(&'a [u8]),
    /// The container process's stdio (create, exec).
    Process(Stdio3),
}

impl Runtime {
    pub fn new(options: GlobalOptions, reaper: Arc<Reaper>) -> Runtime {
        Runtime { options, reaper }
    }

    /// `create`: init is left parked until `start`.
    pub fn create(&self, id: &str, o: &CreateOptions, stdio: Stdio3) -> Result<(), RuntimeError> {
        let call = self
            .call("create")
            .arg("--bundle")
            .arg(o.bundle)
            .arg("--pid-file")
            .arg(o.pid_file)
            .flag(o.no_pivot, "--no-pivot")
            .flag(o.no_new_keyring, "--no-new-keyring")
            .option("--console-socket", o.console_socket)
            .arg(id);
        self.run(call, Io::Process(stdio)).map(drop)
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(self.call("start").arg(id), Io::Capture).map(drop)
    }

    /// `kill`; with `all`, every process of the container.
    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let call = self
            .call("kill")
            .flag(all, "--all")
            .arg(id)
            .arg(signal.to_string());
        self.run(call, Io::Capture).map(drop)
    }

    /// `delete --force`: the shim deletes a container whose init has
    /// exited or never started, and one that never started must go too.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let call = self.call("delete").arg("--force").arg(id);
        self.run(call, Io::Capture).map(drop)
    }

    pub fn exec(&self, id: &str, o: &ExecOptions, stdio: Stdio3) -> Result<(), RuntimeError> {
        let call = self
            .call("exec")
            .arg("--process")
            .arg(o.process)
            .arg("--detach")
            .arg("--pid-file")
            .arg(o.pid_file)
            .option("--console-socket", o.console_socket)
            .arg(id);
        self.run(call, Io::Process(stdio)).map(drop)
    }

    /// `checkpoint`; unless `exit`, the container keeps running.
    pub fn checkpoint(&self, id: &str, a: &CheckpointArgs) -> Result<(), RuntimeError> {
        let o = a.options;
        let mut call = self
            .call("checkpoint")
            .arg("--image-path")
            .arg(a.image_path)
            .arg("--work-path")
            .arg(a.work_path)
            .flag(!o.exit, "--leave-running")
            .flag(o.open_tcp, "--tcp-established")
            .flag(o.external_unix_sockets, "--ext-unix-sk")
            .flag(o.terminal, "--shell-job")
            .flag(o.file_locks, "--file-locks");
        for ns in &o.empty_namespaces {
            call = call.arg("--empty-ns").arg(ns);
        }
        if !o.cgroups_mode.is_empty() {
            call = call.arg("--manage-cgroups-mode").arg(&o.cgroups_mode);
        }
        self.run(call.arg(id), Io::Capture).map(drop)
    }

    /// `restore --detach`: init comes back with the given stdio.
    pub fn restore(&self, id: &str, o: &RestoreOptions, stdio: Stdio3) -> Result<(), RuntimeError> {
        let call = self
            .call("restore")
            .arg("--image-path")
            .arg(o.image_path)
            .arg("--work-path")
            .arg(o.work_path)
            .arg("--bundle")
            .arg(o.bundle)
            .arg("--pid-file")
            .arg(o.pid_file)
            .args(&["--detach", "--no-subreaper"])
            .flag(o.no_pivot, "--no-pivot")
            .option("--console-socket", o.console_socket)
            .arg(id);
        self.run(call, Io::Process(stdio)).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(self.call("pause").arg(id), Io::Capture).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(self.call("resume").arg(id), Io::Capture).map(drop)
    }

    /// `update` with the runtime-spec resources `resources` (JSON).
    pub fn update(&self, id: &str, resources: &[u8]) -> Result<(), RuntimeError> {
        let call = self.call("update").arg("--resources").arg("-").arg(id);
        self.run(call, Io::Feed(resources)).map(drop)
    }

    /// The pids of the container's processes.
    pub fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        let call = self.call("ps").arg("--format").arg("json").arg(id);
        Ok(serde_json::from_slice(&self.run(call, Io::Capture)?)?)
    }

    /// The container's statistics (`events --stats`), as JSON.
    pub fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let call = self.call("events").arg("--stats").arg(id);
        Ok(serde_json::from_slice(&self.run(call, Io::Capture)?)?)
    }

    /// `verb` after the global flags, run in the bundle.
    fn call(&self, verb: &'static str) -> Call {
        let o = &self.options;
        let mut cmd = Command::new(&o.binary);
        cmd.arg("--root")
            .arg(&o.root)
            .arg("--log")
            .arg(&o.log)
            .args(["--log-format", "json"]);
        if o.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.arg(verb);
        if let Some(bundle) = o.log.parent() {
            cmd.current_dir(bundle);
        }
        Call { verb, cmd }
    }

    /// Runs `call` and returns what it printed (nothing for `Io::Process`).
    fn run(&self, call: Call, io: Io) -> Result<Vec<u8>, RuntimeError> {
        let Call { verb, mut cmd } = call;
        let input = match io {
            Io::Process(stdio) => {
                cmd.stdin(stdio.stdin)
                    .stdout(stdio.stdout)
                    .stderr(stdio.stderr);
                None
            }
            Io::Capture => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                None
            }
            Io::Feed(input) => {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                Some(input)
            }
        };
        let logged = self.log_len();
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        // Our copies of the container's stdio go now: it keeps its own.
        drop(cmd);
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            // A runtime that stops reading gets EPIPE here; its exit says why.
            let _ = stdin.write_all(input);
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_end(&mut out);
        }
        match self.reaper.wait(child.id() as i32).status {
            0 => Ok(out),
            status => Err(RuntimeError::Failed {
                binary: self.name(),
                verb: verb.to_owned(),
                message: self
                    .last_error(logged)
                    .unwrap_or_else(|| format!("exit status {status}")),
            }),
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            binary: self.options.binary.display().to_string(),
            source,
        }
    }

    fn name(&self) -> String {
        let binary = &self.options.binary;
        let name = binary.file_name().unwrap_or(binary.as_os_str());
        name.to_string_lossy().into_owned()
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.options.log).map_or(0, |m| m.len())
    }

    /// The `msg` of the last `"level":"error"` line the runtime logged
    /// after offset `from`: containerd shows the user that line.
    fn last_error(&self, from: u64) -> Option<String> {
        let mut file = File::open(&self.options.log).ok()?;
        file.seek(SeekFrom::Start(from)).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        last_error_line(&text)
    }
}

fn last_error_line(log: &str) -> Option<String> {
    log.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or(line).to_owned())
    })
}

/// The runtime binary `name` (options' `BinaryName`) names: berth beside
/// the shim, or on PATH, when it is empty.
pub fn find_binary(name: &str) -> PathBuf {
    if !name.is_empty() {
        return PathBuf::from(name);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("berth")))
        .filter(|p| p.is_file());
    beside.unwrap_or_else(|| PathBuf::from("berth"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_line_is_the_message() {
        let log = concat!(
            r#"{"level":"error","msg":"first","time":"t"}"#,
            "\n",
            r#"{"level":"info","msg":"later","time":"t"}"#,
            "\n",
            r#"{"level":"error","msg":"container \"x\" does not exist","time":"t"}"#,
            "\n",
        );
        assert_eq!(
            last_error_line(log).unwrap(),
            "container \"x\" does not exist"
        );
    }

    #[test]
    fn no_error_line_means_no_message() {
        assert_eq!(last_error_line(r#"{"level":"warning","msg":"w"}"#), None);
    }

    #[test]
    fn the_root_defaults_per_namespace() {
        let options = Options {
            binary_name: "runc".into(),
            ..Default::default()
        };
        let o = GlobalOptions::new(&options, "k8s.io", "/b/log.json".into());
        assert_eq!(o.root, Path::new("/run/containerd/berth/k8s.io"));
        assert_eq!(o.binary, Path::new("runc"));
        assert_eq!(o.log, Path::new("/b/log.json"));
        let options = Options {
            root: "/r".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        let o = GlobalOptions::new(&options, "k8s.io", "/b/log.json".into());
        assert_eq!(
            (o.root.as_path(), o.systemd_cgroup),
            (Path::new("/r/k8s.io"), true)
        );
    }
}
