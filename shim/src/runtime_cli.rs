//! Running the runc-compatible runtime binary (berth by default) with the
//! global flags containerd's runc shim passes, and turning its failures into
//! the last error line it logged.

use crate::io::Stdio3;
use crate::reaper::Reaper;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
            RuntimeError::Spawn { .. } => false,
        }
    }
}

/// What the options of a container say about its runtime; persisted in the
/// bundle so that `shim delete`, a fresh process, finds the same binary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub log: PathBuf,
}

impl Runtime {
    /// `binary` and `root` as the options give them ("" when unset).
    pub fn new(
        binary: &str,
        root: &str,
        namespace: &str,
        systemd_cgroup: bool,
        log: PathBuf,
    ) -> Runtime {
        let root = match root {
            "" => Path::new("/run/containerd/berth").join(namespace),
            root => Path::new(root).join(namespace),
        };
        Runtime {
            binary: find_binary(binary),
            root,
            systemd_cgroup,
            log,
        }
    }

    /// Runs `args`, feeding `input` to its stdin, and returns its stdout.
    pub fn output(
        &self,
        reaper: &Reaper,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let logged = self.log_len();
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            // A runtime that stops reading gets EPIPE here; its exit says why.
            let _ = stdin.write_all(input);
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_end(&mut out);
        }
        self.finish(reaper, child.id() as i32, args, logged)?;
        Ok(out)
    }

    /// Runs `args` with the container process's stdio (create, exec).
    pub fn run_with(
        &self,
        reaper: &Reaper,
        args: &[&str],
        stdio: Stdio3,
    ) -> Result<(), RuntimeError> {
        let mut cmd = self.command(args);
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let logged = self.log_len();
        let child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        // Our copies of the stdio go now: the container keeps its own.
        drop(cmd);
        self.finish(reaper, child.id() as i32, args, logged)
    }

    /// Runs `args` with no stdio.
    pub fn run(&self, reaper: &Reaper, args: &[&str]) -> Result<(), RuntimeError> {
        self.output(reaper, args, None).map(drop)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(args);
        if let Some(bundle) = self.log.parent() {
            cmd.current_dir(bundle);
        }
        cmd
    }

    fn finish(
        &self,
        reaper: &Reaper,
        pid: i32,
        args: &[&str],
        logged: u64,
    ) -> Result<(), RuntimeError> {
        match reaper.wait(pid).status {
            0 => Ok(()),
            status => Err(RuntimeError::Failed {
                binary: self.name(),
                verb: args.first().copied().unwrap_or_default().to_owned(),
                message: self
                    .last_error(logged)
                    .unwrap_or_else(|| format!("exit status {status}")),
            }),
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        }
    }

    fn name(&self) -> String {
        let name = self.binary.file_name().unwrap_or(self.binary.as_os_str());
        name.to_string_lossy().into_owned()
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The `msg` of the last `"level":"error"` line the runtime logged
    /// after offset `from`: containerd shows the user that line.
    fn last_error(&self, from: u64) -> Option<String> {
        let mut file = File::open(&self.log).ok()?;
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

/// `name` as the options give it; unset means `berth` next to the shim's
/// own binary, else on PATH.
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
        let rt = Runtime::new("runc", "", "k8s.io", false, "/b/log.json".into());
        assert_eq!(rt.root, Path::new("/run/containerd/berth/k8s.io"));
        assert_eq!(rt.binary, Path::new("runc"));
        assert_eq!(rt.log, Path::new("/b/log.json"));
    }
}
