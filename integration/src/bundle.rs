//! A container under test: a bundle (config.json + a private busybox rootfs),
//! a state root of its own, a unique id, and wrappers for the runtime's verbs.

use crate::exec::{self, Out, DEADLINE};
use crate::{json, rootfs_cache, runtime, set_pointer, spec_template, ConsoleSocket, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};

/// The environment variable every container process and test hook carries,
/// so that [`Bundle::assert_no_leftovers`] can find strays.
const MARKER_VAR: &str = "BERTH_IT";

pub struct Bundle {
    /// The container id, unique across tests and test processes.
    pub id: String,
    /// The test's private directory; everything below is removed on drop.
    pub dir: PathBuf,
    /// The bundle directory (config.json and rootfs/).
    pub path: PathBuf,
    /// The `--root` state directory, used by this test only.
    pub state_root: PathBuf,
    /// The config the next `create`/`run` uses; edits are saved at once.
    pub config: Value,
}

/// A path as &str; every path the tests make is UTF-8.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

impl Bundle {
    /// A bundle whose rootfs is a fresh copy of the cached busybox rootfs,
    /// with config.json from `<runtime> spec`, no terminal, args `true`.
    pub fn new() -> Bundle {
        Bundle::new_under(&std::env::temp_dir())
    }

    /// [`Bundle::new`], with the test directory under `base` (a stack's
    /// jail sees the target directory alone).
    pub fn new_under(base: &Path) -> Bundle {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{}-{seq}", test_name(), std::process::id());
        let dir = base.join("berth-it").join(&id);
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("bundle");
        std::fs::create_dir_all(dir.join("logs")).expect("create test dir");
        std::fs::create_dir_all(&path).expect("create bundle dir");
        // A private copy (a few ms): tests may write to it, and its path
        // identifies this container's processes and mounts.
        let copy = Command::new("cp")
            .arg("-a")
            .arg(rootfs_cache())
            .arg(path.join("rootfs"))
            .status();
        assert!(copy.expect("run cp").success(), "copy the rootfs");

        let config = base_config(&id);
        let bundle = Bundle {
            state_root: dir.join("root"),
            id,
            dir,
            path,
            config,
        };
        bundle.save();
        bundle
    }

    /// The `NAME=value` environment entry that marks this container's
    /// processes; configs that replace `process.env` must keep it.
    pub fn marker(&self) -> String {
        marker(&self.id)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// Writes `text` to `path` in the rootfs with `mode` (a program or a
    /// script the container will run).
    pub fn write_in_rootfs(&self, path: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let file = self.rootfs().join(path.trim_start_matches('/'));
        std::fs::write(&file, text).expect("write into the rootfs");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .expect("chmod in the rootfs");
    }

    fn save(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        std::fs::write(self.path.join("config.json"), text).expect("write config.json");
    }

    /// Changes the config with `f` and saves it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    /// Sets one field by JSON pointer, e.g. `/process/cwd`, and saves.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        self.edit(|c| set_pointer(c, pointer, value))
    }

    /// Makes the container run `sh -c script`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.set("/process/args", json!(["sh", "-c", script]))
    }

    /// Gives the process capability `cap` (bounding, effective, permitted).
    pub fn grant(&mut self, cap: &str) -> &mut Self {
        self.edit(|c| {
            for set in ["bounding", "effective", "permitted"] {
                let caps = c["process"]["capabilities"][set]
                    .as_array_mut()
                    .expect("spec has capabilities");
                caps.push(json!(cap));
            }
        })
    }

    /// Gives the container a new user namespace mapping ids 0-65535 to
    /// 100000-165535 on the host.
    pub fn in_user_namespace(&mut self) -> &mut Self {
        let mapping = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        self.edit(|c| {
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            list.retain(|n| n["type"] != "user");
            list.push(json!({"type": "user"}));
        })
        .set("/linux/uidMappings", mapping.clone())
        .set("/linux/gidMappings", mapping)
    }

    /// Replaces the config's mount at `dest` with a bind of host directory
    /// `name`, which `fill` fills first (standing for an image or a volume
    /// shared with another container).
    pub fn host_dir_at(&mut self, dest: &str, name: &str, fill: impl FnOnce(&Path)) -> PathBuf {
        let dir = self.host_dir(name);
        fill(&dir);
        self.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            let at = mounts
                .iter()
                .position(|m| m["destination"] == dest)
                .unwrap();
            mounts[at] =
                json!({"destination": dest, "type": "bind", "source": dir, "options": ["rbind"]});
        });
        dir
    }

    /// Appends a mount to the config.
    pub fn mount(&mut self, mount: Value) -> &mut Self {
        self.edit(|c| {
            c["mounts"]
                .as_array_mut()
                .expect("spec has mounts")
                .push(mount)
        })
    }

    /// Bind-mounts `source` at `dest` with `options` besides `rbind`.
    pub fn bind(&mut self, source: &Path, dest: &str, options: &[&str]) -> &mut Self {
        let mut opts = vec!["rbind"];
        opts.extend_from_slice(options);
        self.mount(json!({"destination": dest, "type": "bind", "source": source, "options": opts}))
    }

    /// Adds `option` to the spec's mount at `dest`.
    pub fn add_mount_option(&mut self, dest: &str, option: &str) -> &mut Self {
        self.edit(|c| {
            let m = c["mounts"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|m| m["destination"] == dest)
                .unwrap_or_else(|| panic!("the spec mounts nothing at {dest}"));
            m["options"].as_array_mut().unwrap().push(json!(option));
        })
    }

    /// A hook running `sh -c script` with the container's marker in its
    /// environment (so a hook left running counts as a leftover).
    pub fn hook(&self, script: &str) -> Value {
        let env = [
            self.marker(),
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ];
        json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": env})
    }

    /// A new empty directory beside the bundle, for the test to share with
    /// the container or with hooks.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("create host dir");
        dir
    }

    /// The runtime with `--root <state_root>` and `args`.
    pub fn rt(&self, args: &[&str]) -> Out {
        self.output(self.command().args(args))
    }

    /// Runs `cmd` (e.g. from [`Bundle::command`]) with this test's deadline
    /// and output files.
    pub fn output(&self, cmd: &mut Command) -> Out {
        exec::run(cmd, &self.dir.join("logs"))
    }

    /// The runtime command with `--root <state_root>`, run in the test dir.
    /// It carries the marker too: a parked init is a fork of the runtime and
    /// has the runtime's environment until it execs the container process.
    pub fn command(&self) -> Command {
        self.command_of(runtime())
    }

    /// [`Bundle::command`] with another build of the runtime binary.
    pub fn command_of(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.args(crate::runtime_flags())
            .arg("--root")
            .arg(&self.state_root);
        cmd.current_dir(&self.dir).env(MARKER_VAR, &self.id);
        cmd
    }

    /// [`Bundle::command`] run as `"$@"` of `sh -c script`: for a caller
    /// whose environment or fds a shell sets up (`$$` is the runtime's pid
    /// once the script `exec`s it).
    pub fn command_via_sh(&self, script: &str) -> Command {
        let rt = self.command();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "sh"])
            .arg(rt.get_program())
            .args(rt.get_args())
            .current_dir(&self.dir)
            .env(MARKER_VAR, &self.id);
        cmd
    }

    /// Runs `sh -c script` in a mount namespace of its own, private
    /// (`unshare -m --propagation private`), with `$RT` the runtime and its
    /// global flags, `$BUNDLE` and `$ID`: for configs that would change the
    /// caller's mounts if the runtime regressed, and for scenarios that
    /// make mounts of their own. Whatever is mounted there goes with it.
    pub fn in_private_mount_ns(&self, script: &str) -> Out {
        let mut rt = vec![s(runtime()).to_owned()];
        rt.extend(crate::runtime_flags());
        rt.extend(["--root".to_owned(), s(&self.state_root).to_owned()]);
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("RT", rt.join(" "))
            .env("BUNDLE", &self.path)
            .env("ID", &self.id)
            .env(MARKER_VAR, &self.id)
            .current_dir(&self.dir);
        self.output(&mut cmd)
    }

    pub fn run(&self) -> Out {
        self.rt(&["run", "--bundle", s(&self.path), &self.id])
    }

    /// Runs `sh -c script` to the end, asserts exit 0 and returns its stdout.
    #[track_caller]
    pub fn run_sh(&mut self, script: &str) -> String {
        self.sh(script);
        self.run().assert_ok().stdout.clone()
    }

    pub fn create(&self) -> Out {
        self.rt(&["create", "--bundle", s(&self.path), &self.id])
    }

    pub fn start(&self) -> Out {
        self.rt(&["start", &self.id])
    }

    pub fn state(&self) -> Out {
        self.rt(&["state", &self.id])
    }

    /// `kill ID [signal...]`.
    pub fn kill(&self, signal: &[&str]) -> Out {
        let mut args = vec!["kill", &self.id];
        args.extend_from_slice(signal);
        self.rt(&args)
    }

    /// `delete [flags...] ID`.
    pub fn delete(&self, flags: &[&str]) -> Out {
        let mut args = vec!["delete"];
        args.extend_from_slice(flags);
        args.push(&self.id);
        self.rt(&args)
    }

    /// The parsed output of a successful `state`.
    #[track_caller]
    pub fn state_json(&self) -> Value {
        serde_json::from_str(&self.state().assert_ok().stdout).expect("state prints JSON")
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        let what = format!("{} never became {want}", self.id);
        crate::exec::poll(&what, || self.state_json()["status"].clone(), |s| s == want);
    }

    /// Starts `run` in the background with its stdout readable line by line.
    pub fn spawn_run(&self) -> Running {
        let mut child = self
            .command()
            .args(["run", "--bundle", s(&self.path), &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn run");
        let lines = lines_of(child.stdout.take().unwrap());
        Running { child, lines }
    }

    /// Runs the container with a terminal through `--console-socket` (which
    /// runc allows for `create`, not for a foreground `run`) and returns what
    /// it wrote to the terminal, with `\r\n` turned into `\n`.
    #[track_caller]
    pub fn run_with_console(&mut self) -> String {
        self.set("/process/terminal", json!(true));
        let console = ConsoleSocket::listen(&self.dir.join("console.sock"));
        let socket = s(&console.path).to_owned();
        self.rt(&[
            "create",
            "--bundle",
            s(&self.path),
            "--console-socket",
            &socket,
            &self.id,
        ])
        .assert_ok();
        self.start().assert_ok();
        let output = console.output();
        self.wait_status("stopped");
        self.delete(&[]).assert_ok();
        output
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Bundle {
    /// Best-effort cleanup, so a failed test does not leak into the next:
    /// force-delete, kill strays, unmount, remove the test directory.
    fn drop(&mut self) {
        let _ = self.rt(&["delete", "--force", &self.id]);
        self.kill_strays();
        self.unmount_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lines a child writes, read by a thread as they come.
pub fn lines_of(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .try_for_each(|l| tx.send(l))
    });
    lines
}

/// A `run` in the background (for tests that signal a running container).
pub struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    /// Waits until the container prints `line` (e.g. after installing a trap).
    #[track_caller]
    pub fn wait_for_line(&self, line: &str) {
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(l) if l == line => return,
                Ok(_) => {}
                Err(e) => panic!("container never printed {line:?}: {e}"),
            }
        }
    }

    /// The exit code of `run`.
    pub fn exit_code(self) -> i32 {
        exec::wait(self.child, "run")
    }
}

/// `<runtime> spec` with the rootfs at `rootfs`, no terminal, args `true`,
/// and the marker for container `id` in the environment.
fn base_config(id: &str) -> Value {
    let mut config = spec_template().clone();
    config["root"]["path"] = json!("rootfs");
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    let env = config["process"]["env"]
        .as_array_mut()
        .expect("spec has process.env");
    env.push(json!(marker(id)));
    config
}

fn marker(id: &str) -> String {
    format!("{MARKER_VAR}={id}")
}

/// The current test's name (libtest names each test's thread after it),
/// shortened for ids and socket paths.
pub(crate) fn test_name() -> String {
    let thread = std::thread::current();
    let full = thread.name().unwrap_or("test");
    let name: String = full
        .rsplit("::")
        .next()
        .unwrap_or(full)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(28)
        .collect();
    name.trim_end_matches('-').to_owned()
}
