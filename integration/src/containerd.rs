//! A containerd of the test suite's own (config, root, state and socket
//! under one directory), started once per test process and shared by its
//! scenarios (or one of a scenario's own, to restart), with a busybox
//! image made from `hack/mkrootfs`, and the shim under test chosen by
//! `$BERTH_SHIM`: `berth` (default, `io.containerd.berth.v2` from the
//! workspace's build) or `runc` (containerd's stock `io.containerd.runc.v2`,
//! to prove the scenarios honest). containerd 1.6 is the host's; 1.7 and
//! 2.1 run on a newer stack (`$BERTH_STACK`, see [`crate::stack`]).

use crate::exec::{self, Out};
use crate::leftovers::DAEMON_GRACE;
use crate::stack::{Jail, Stack};
use crate::{rootfs_cache, target_dir};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The image every scenario runs.
pub const IMAGE: &str = "berth.test/busybox:latest";
/// The namespace the scenarios use.
pub const NAMESPACE: &str = "berth-it";

pub struct Containerd {
    pub dir: PathBuf,
    pub address: PathBuf,
    /// The runtime type `ctr run --runtime` gets.
    pub runtime: &'static str,
    /// Where the shim's runtime keeps container state (`--root`).
    pub runtime_root: PathBuf,
    /// Where containerd finds the shim binary.
    shim_dir: PathBuf,
    /// The shell that runs containerd (see [`keep`]); its stdin open.
    keeper: Keeper,
}

/// The suite's containerd, shared by the scenarios of this test process,
/// or why there is none. Under `CI=true` a missing prerequisite panics;
/// otherwise the caller skips, printing the reason.
pub fn containerd() -> Result<&'static Containerd, String> {
    static CONTAINERD: OnceLock<Result<Containerd, String>> = OnceLock::new();
    crate::prerequisite(&CONTAINERD, start)
}

/// A containerd of the caller's own, for a scenario that disturbs the
/// daemon (a restart); stopped and removed when dropped.
pub fn private_containerd() -> Result<Containerd, String> {
    crate::checked(start())
}

/// Skips the calling test, saying why, when there is no containerd (and
/// fails it under CI); else evaluates to the suite's containerd, or to
/// the one the given expression starts.
#[macro_export]
macro_rules! containerd_or_skip {
    () => {
        $crate::or_skip!($crate::containerd())
    };
    ($found:expr) => {
        $crate::or_skip!($found)
    };
}

fn start() -> Result<Containerd, String> {
    let stack = crate::stack::under_test()?;
    match stack {
        Some(_) => need_root_and(&["tar", "sha256sum", "unshare", "nsenter"])?,
        None => need_root_and(&["containerd", "ctr", "tar", "sha256sum"])?,
    }
    let (runtime, runtime_root, shim_dir) = shim_under_test()?;
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = target_dir().join(format!("containerd-it.{}.{seq}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let address = write_config(&dir)?;
    let keeper = keep(&dir, &shim_dir, &[containerd_command(&dir)], stack.as_ref())?;
    wait_for_socket(&address)?;
    let c = Containerd {
        dir,
        address,
        runtime,
        runtime_root,
        shim_dir,
        keeper,
    };
    c.import_image();
    Ok(c)
}

/// The runtime type, its runtime's state root, and the directory to put
/// first on containerd's PATH so it finds the shim.
fn shim_under_test() -> Result<(&'static str, PathBuf, PathBuf), String> {
    let root = |name: &str| Path::new("/run/containerd").join(name).join(NAMESPACE);
    match std::env::var("BERTH_SHIM").as_deref() {
        Ok("runc") => Ok((
            "io.containerd.runc.v2",
            root("runc"),
            PathBuf::from("/usr/bin"),
        )),
        Ok("berth") | Err(_) => {
            let dir = crate::build_dir();
            for bin in ["containerd-shim-berth-v2", "berth"] {
                if !dir.join(bin).is_file() {
                    return Err(format!(
                        "{} not found: run `cargo build`",
                        dir.join(bin).display()
                    ));
                }
            }
            Ok(("io.containerd.berth.v2", root("berth"), dir))
        }
        Ok(other) => Err(format!("BERTH_SHIM={other}: expected berth or runc")),
    }
}

/// Writes a config of containerd's own under `dir` (root, state and socket
/// there, no CRI), and returns its socket's path.
pub(crate) fn write_config(dir: &Path) -> Result<PathBuf, String> {
    let address = dir.join("containerd.sock");
    let config = format!(
        "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n",
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        sock = address.display(),
    );
    std::fs::write(dir.join("config.toml"), config).map_err(|e| e.to_string())?;
    Ok(address)
}

/// The daemon that runs the containerd of [`write_config`].
pub(crate) fn containerd_command(dir: &Path) -> Daemon {
    let dir = dir.display();
    let command = format!("containerd --config '{dir}/config.toml' >>'{dir}/containerd.log' 2>&1");
    ("containerd", command)
}

/// A daemon's name (its pid is in `NAME.pid` of the keeper's directory)
/// and its shell command.
pub(crate) type Daemon = (&'static str, String);

/// Starts `daemons` under a keeper shell that starts each again whenever it
/// dies (a scenario's [`Containerd::restart`] kills containerd), and that
/// stops them in reverse order and removes `dir` when its stdin closes: when
/// the scenario drops a private daemon, or when the test process exits for
/// a shared one (only this process holds the pipe open). `path_first`
/// leads their PATH. On a `stack`, the keeper is the jail's pid 1.
pub(crate) fn keep(
    dir: &Path,
    path_first: &Path,
    daemons: &[Daemon],
    stack: Option<&Stack>,
) -> Result<Keeper, String> {
    let script = keeper_script(daemons);
    let argv = ["sh", "-c", &script, "keeper", &dir.display().to_string()].map(String::from);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = match stack {
        Some(stack) => stack.command(&argv),
        None => {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    };
    let path = format!(
        "{}:{}",
        path_first.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let names: Vec<&str> = daemons.iter().map(|(name, _)| *name).collect();
    let child = cmd
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {}: {e}", names.join(", ")))?;
    let jail = stack.map(|_| Jail::of(child.id())).transpose()?;
    Ok(Keeper {
        child,
        jail,
        netns: None,
    })
}

fn keeper_script(daemons: &[Daemon]) -> String {
    let mut script = String::new();
    for (i, (name, command)) in daemons.iter().enumerate() {
        script += &format!(
            "while :; do\n  {command} &\n  echo $! >\"$1/{name}.pid\"; wait $!\n  \
             [ -e \"$1/stopping\" ] && exit\ndone &\nloop{i}=$!\n"
        );
    }
    script += "cat >/dev/null\ntouch \"$1/stopping\"\n";
    for (i, (name, _)) in daemons.iter().enumerate().rev() {
        script += &format!("kill $(cat \"$1/{name}.pid\"); wait $loop{i}\n");
    }
    script + "rm -rf --one-file-system \"$1\""
}

/// The keeper shell of [`keep`], and the jail it is pid 1 of on a stack.
/// Dropping it stops the daemons.
pub struct Keeper {
    child: Child,
    pub jail: Option<Jail>,
    /// On the host, the network namespace of [`crate::netns`] the daemons
    /// run in, if any.
    pub(crate) netns: Option<PathBuf>,
}

/// Where the daemons live, for the scenarios' own checks: the host, or the
/// stack's jail.
impl Keeper {
    /// The host's pid of the daemons' process `pid`.
    pub fn host_pid(&self, pid: libc::pid_t) -> Option<libc::pid_t> {
        match &self.jail {
            Some(jail) => jail.host_pid(pid),
            None => Some(pid),
        }
    }

    /// Where the host finds `path` of the daemons' filesystem.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match &self.jail {
            Some(jail) => jail.host_path(path),
            None => path.to_owned(),
        }
    }

    /// `program`, run where the daemons run.
    pub fn program(&self, program: &dyn AsRef<std::ffi::OsStr>) -> Command {
        match &self.jail {
            Some(jail) => jail.command(program),
            None => Command::new(program),
        }
    }

    /// The daemons' namespace of `kind` (`net`, `pid`, ...).
    pub fn ns(&self, kind: &str) -> PathBuf {
        match (&self.jail, &self.netns) {
            (Some(jail), _) => jail.ns(kind),
            (None, Some(netns)) if kind == "net" => netns.clone(),
            (None, _) => PathBuf::from(format!("/proc/self/ns/{kind}")),
        }
    }

    /// The daemons' mount table.
    pub fn mountinfo(&self) -> PathBuf {
        match &self.jail {
            Some(jail) => jail.mountinfo(),
            None => PathBuf::from("/proc/self/mountinfo"),
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Containerd {
    /// The shim binary containerd runs for [`Containerd::runtime`]
    /// (`io.containerd.NAME.v2` is `containerd-shim-NAME-v2`).
    pub fn shim_binary(&self) -> PathBuf {
        let name = self.runtime.split('.').nth(2).unwrap_or_default();
        self.shim_dir.join(format!("containerd-shim-{name}-v2"))
    }

    /// The running containerd's pid (the host's).
    fn pid(&self) -> Option<libc::pid_t> {
        let text = std::fs::read_to_string(self.dir.join("containerd.pid")).ok()?;
        self.host_pid(text.trim().parse().ok()?)
    }

    /// The host's pid of containerd's process `pid`.
    pub fn host_pid(&self, pid: libc::pid_t) -> Option<libc::pid_t> {
        self.keeper.host_pid(pid)
    }

    /// Where the host finds `path` of containerd's filesystem.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        self.keeper.host_path(path)
    }

    /// The path of the pid namespace containerd runs in, as containerd
    /// names it (the host's, or the jail's).
    pub fn daemon_pid_ns(&self) -> String {
        match &self.keeper.jail {
            Some(_) => "/proc/1/ns/pid".to_owned(),
            None => format!("/proc/{}/ns/pid", std::process::id()),
        }
    }

    /// `program` where containerd runs, in `dir` (a path under `target`).
    pub fn program_in(&self, dir: &Path, program: &Path) -> Command {
        let Some(jail) = &self.keeper.jail else {
            let mut cmd = Command::new(program);
            cmd.current_dir(dir);
            return cmd;
        };
        // nsenter's own --wd would leave a cwd the jail cannot name; the
        // shell stays the program's parent, in the jail's pid namespace
        // (the stock shim reads its parent's OOM score).
        let mut cmd = jail.command("sh");
        cmd.args(["-c", "cd \"$0\" && \"$@\""])
            .arg(dir)
            .arg(program);
        cmd
    }

    /// Kills containerd (SIGKILL: it has no chance to tidy up) and waits
    /// until the keeper has started it again with the same config.
    #[track_caller]
    pub fn restart(&self) {
        let old = self.pid().expect("containerd runs");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(old, libc::SIGKILL) };
        let new = |pid: &Option<libc::pid_t>| pid.is_some_and(|pid| pid != old);
        exec::poll("containerd never came back", || self.pid(), new);
        wait_for_socket(&self.address).unwrap();
    }
}

pub(crate) fn wait_for_socket(address: &Path) -> Result<(), String> {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(address).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "nothing listened at {} (see the log beside it)",
                address.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the daemon scenarios can run: as root, with `tools` installed
/// (on PATH, or where an absolute path says: `join` keeps that as it is).
pub(crate) fn need_root_and(tools: &[&str]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the daemon scenarios need root".into());
    }
    match tools.iter().find(|tool| !on_path(tool)) {
        Some(tool) => Err(format!("{tool} is not installed (hack/deps installs it)")),
        None => Ok(()),
    }
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}

impl Containerd {
    /// `ctr --address A -n NAMESPACE`: the stack's own ctr.
    pub fn ctr_argv(&self) -> Vec<String> {
        let mut argv = self.keeper.jail.as_ref().map_or_else(Vec::new, Jail::argv);
        let address = self.address.display().to_string();
        argv.extend(["ctr", "--address", &address, "-n", NAMESPACE].map(str::to_owned));
        argv
    }

    /// `ctr --address A -n NAMESPACE args...`.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let argv = self.ctr_argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).args(args).current_dir(&self.dir);
        cmd
    }

    /// Runs ctr with stdin closed.
    pub fn ctr(&self, args: &[&str]) -> Out {
        exec::run(&mut self.ctr_command(args), &self.logs())
    }

    /// Runs ctr with `input` as its stdin.
    pub fn ctr_with_input(&self, args: &[&str], input: &str) -> Out {
        let file = self.logs().join(format!("input.{}", std::process::id()));
        std::fs::write(&file, input).expect("write stdin file");
        let stdin = File::open(&file).expect("open stdin file");
        exec::run_with_stdin(&mut self.ctr_command(args), &self.logs(), stdin.into())
    }

    /// Where ctr's output files go.
    pub fn logs(&self) -> PathBuf {
        logs_in(&self.dir)
    }

    /// Imports a docker archive of the busybox rootfs as [`IMAGE`].
    fn import_image(&self) {
        let archive = image_archive(&self.dir.join("image"), &self.logs(), IMAGE, &["sh"]);
        self.ctr(&["images", "import", archive.to_str().unwrap()])
            .assert_ok();
    }
}

/// Writes, in `dir`, a docker archive of the busybox rootfs tagged `tag`
/// whose command is `cmd` (a layer tarball, an image config naming its
/// digest, a manifest), and returns the archive's path.
pub(crate) fn image_archive(dir: &Path, logs: &Path, tag: &str, cmd: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create image dir");
    let run = |cmd: &mut Command| exec::run(cmd, logs).assert_ok().stdout.clone();
    rootfs_layer(&dir.join("layer.tar"), logs);
    let sum = run(Command::new("sha256sum").arg(dir.join("layer.tar")));
    let digest = sum
        .split_whitespace()
        .next()
        .expect("sha256sum prints a digest");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [IMAGE_PATH], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{digest}")]},
    });
    let manifest =
        serde_json::json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]);
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write image config");
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
    let archive = dir.join("image.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(&archive)
        .args(["manifest.json", "config.json", "layer.tar"]));
    archive
}

/// The `logs` directory of a daemon's `dir`, made if need be.
pub(crate) fn logs_in(dir: &Path) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("create logs dir");
    logs
}

/// The PATH the test image's config gives its processes.
pub(crate) const IMAGE_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// Writes the busybox rootfs as a layer tarball at `path`.
pub(crate) fn rootfs_layer(path: &Path, logs: &Path) {
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(rootfs_cache())
        .arg("-cf")
        .arg(path)
        .arg(".");
    exec::run(&mut tar, logs).assert_ok();
}

/// One container of a scenario, with a unique id and the marker variable
/// in its environment (so its processes can be found); force-removed on
/// drop so that a failed scenario does not leak into the next.
pub struct Task<'a> {
    pub id: String,
    pub ctd: &'a Containerd,
}

impl Containerd {
    pub fn task(&self) -> Task<'_> {
        Task {
            id: crate::unique_name(),
            ctd: self,
        }
    }
}

impl Task<'_> {
    fn marker(&self) -> String {
        format!("BERTH_IT={}", self.id)
    }

    /// `ctr run [flags...] --runtime R --env MARKER IMAGE ID args...`.
    pub fn run_args<'s>(&'s self, flags: &[&'s str], args: &[&'s str]) -> Vec<String> {
        let mut all: Vec<String> = vec!["run".into()];
        all.extend(flags.iter().map(|f| f.to_string()));
        all.extend([
            "--runtime".into(),
            self.ctd.runtime.into(),
            "--env".into(),
            self.marker(),
        ]);
        all.extend([IMAGE.to_owned(), self.id.clone()]);
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// `ctr run --rm ... args` to the end.
    pub fn run(&self, args: &[&str]) -> Out {
        self.ctd.ctr(&strs(&self.run_args(&["--rm"], args)))
    }

    /// `ctr run --rm ... args` with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Out {
        self.ctd
            .ctr_with_input(&strs(&self.run_args(&["--rm"], args)), input)
    }

    /// `ctr run -d [flags] ... args`, asserting success.
    #[track_caller]
    pub fn run_detached(&self, flags: &[&str], args: &[&str]) {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        self.ctd.ctr(&strs(&self.run_args(&all, args))).assert_ok();
    }

    /// `ctr task VERB ID args...` (or `ctr task VERB args... ID` for verbs
    /// whose flags come first: give them in `flags`).
    pub fn task(&self, verb: &str, flags: &[&str], args: &[&str]) -> Out {
        let mut all = vec!["task", verb];
        all.extend_from_slice(flags);
        all.push(&self.id);
        all.extend_from_slice(args);
        self.ctd.ctr(&all)
    }

    /// The task's (pid, status) as `ctr task ls` shows them.
    pub fn listed(&self) -> Option<(i64, String)> {
        let out = self.ctd.ctr(&["task", "ls"]);
        out.assert_ok().stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&self.id.as_str()))
                .then(|| (f[1].parse().unwrap_or(0), f[2].to_owned()))
        })
    }

    /// Polls `ctr task ls` until the task's status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        let what = format!("{} never became {want}", self.id);
        let is_want = |l: &Option<(i64, String)>| l.as_ref().is_some_and(|(_, s)| s == want);
        exec::poll(&what, || self.listed(), is_want);
    }

    /// The host's pid of the task's init.
    #[track_caller]
    pub fn init_pid(&self) -> i64 {
        let pid = self.listed().expect("the task is listed").0;
        let host = self.ctd.host_pid(pid as libc::pid_t);
        i64::from(host.unwrap_or_else(|| panic!("no host process is containerd's {pid}")))
    }

    /// The bundle containerd made for this task.
    pub fn bundle(&self) -> PathBuf {
        let tasks = self.ctd.dir.join("state/io.containerd.runtime.v2.task");
        tasks.join(NAMESPACE).join(&self.id)
    }

    /// The pid of the shim that serves this task.
    pub fn shim_pid(&self) -> Option<libc::pid_t> {
        crate::leftovers::shim_of(&self.id)
    }

    /// Deletes the task and the container (it must have exited).
    #[track_caller]
    pub fn delete(&self) {
        self.task("delete", &[], &[]).assert_ok();
        self.ctd.ctr(&["containers", "rm", &self.id]).assert_ok();
    }

    /// Asserts that no process of the container runs.
    #[track_caller]
    pub fn assert_no_processes(&self) {
        crate::leftovers::assert_none_marked(&self.id, &self.marker());
    }

    /// SIGKILLs whatever processes of the task are left (after a reference
    /// run that is known to leave some).
    pub fn kill_processes(&self) {
        for pid in crate::leftovers::marked_pids(&self.marker()) {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Asserts that nothing of the container is left: no task or container
    /// in containerd, no shim, no process of the container, no bundle, no
    /// runtime state.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        crate::leftovers::assert_none_left(&self.id, DAEMON_GRACE, || self.leftovers());
    }

    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.listed().is_some() {
            found.push("task in `ctr task ls`".to_owned());
        }
        let containers = self.ctd.ctr(&["containers", "ls", "-q"]).stdout;
        if containers.lines().any(|l| l == self.id) {
            found.push("container in `ctr containers ls`".to_owned());
        }
        found.extend(crate::leftovers::daemon_leftovers(&self.id, &self.marker()));
        let state = self.ctd.host_path(&self.ctd.runtime_root).join(&self.id);
        for dir in [self.bundle(), state] {
            if dir.exists() {
                found.push(format!("directory {}", dir.display()));
            }
        }
        found
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        let _ = self.task("kill", &["-s", "KILL"], &[]);
        let _ = self.task("delete", &["--force"], &[]);
        let _ = self.ctd.ctr(&["containers", "rm", &self.id]);
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
