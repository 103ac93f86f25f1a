//! A dockerd of the test suite's own (data root, exec root, socket, and a
//! containerd of its own, all under one directory), started once per test
//! process, with a busybox image imported from `hack/mkrootfs`: Docker
//! 20.10 from the host's packages, or Docker 26 or 28 on a newer stack
//! (`$BERTH_STACK`, see [`crate::stack`]).
//!
//! `$BERTH_DOCKER` picks how berth stands behind it, each way configured
//! by a snippet of `docs/install.md`:
//! - `runtime` (default): `dockerd --add-runtime berth=<berth>`, so
//!   containerd's stock runc shim drives the berth binary;
//! - `json`: the same runtime given in `daemon.json` (`path`);
//! - `shim`: berth's shim installed as `containerd-shim-runc-v2` ahead of
//!   the stock one on containerd's PATH, driving the berth binary that
//!   Docker names in its options (`BinaryName`, `Root`);
//! - `shim-type` (Docker 23+): `daemon.json` names berth's shim by runtime
//!   type, `io.containerd.berth.v2`, found on containerd's PATH;
//! - `shim-path` (Docker 23+): `daemon.json` names berth's shim by path;
//! - `runc`: the stock shim driving runc, to prove the scenarios honest.

use crate::containerd::{
    containerd_command, keep, logs_in, need_root_and, rootfs_layer, wait_for_socket, write_config,
    Daemon, Keeper, IMAGE_PATH,
};
use crate::docs::snippet;
use crate::exec::{self, Out};
use crate::leftovers::DAEMON_GRACE;
use crate::stack::{self, Jail};
use crate::target_dir;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The image every scenario runs.
pub const DOCKER_IMAGE: &str = "berth.test/busybox:latest";
/// The client, of the same version as the daemon.
const CLIENT: &str = "/usr/bin/docker";
/// The stock shim, the host's or the stack's.
const STOCK_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

pub struct Docker {
    pub dir: PathBuf,
    socket: PathBuf,
    /// What `docker run --runtime` gets.
    pub runtime: &'static str,
    /// The runtime binary the shim must run, and the binary of that shim.
    pub binary: PathBuf,
    pub shim: PathBuf,
    /// Where the shim keeps the runtime's state: Docker's `Root` option
    /// (the exec root's `runtime-runc`, whatever the runtime) and the
    /// namespace, or berth's shim's own default.
    pub runtime_root: PathBuf,
    /// The shell that runs dockerd and its containerd; its stdin open for
    /// the life of the test process.
    keeper: Keeper,
}

/// The suite's dockerd, or why there is none. Under `CI=true` a missing
/// prerequisite panics; otherwise the caller skips, printing the reason.
pub fn docker() -> Result<&'static Docker, String> {
    static DOCKER: OnceLock<Result<Docker, String>> = OnceLock::new();
    crate::prerequisite(&DOCKER, start)
}

/// Skips the calling test, saying why, when there is no dockerd (and fails
/// it under CI); else evaluates to the suite's dockerd.
#[macro_export]
macro_rules! docker_or_skip {
    () => {
        $crate::or_skip!($crate::docker())
    };
}

fn start() -> Result<Docker, String> {
    let stack = stack::under_test()?;
    match stack {
        Some(_) => need_root_and(&["tar", "script", "unshare", "nsenter"])?,
        None => need_root_and(&["containerd", "dockerd", "tar", "script", CLIENT])?,
    }
    let dir = target_dir().join(format!("docker-it.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let way = way_under_test(&dir)?;
    let address = write_config(&dir)?;
    let socket = dir.join("docker.sock");
    let daemons = [
        containerd_command(&dir),
        dockerd_command(&dir, &address, &way.flags),
    ];
    let keeper = keep(&dir, &way.path_first, &daemons, stack.as_ref())?;
    wait_for_socket(&address)?;
    wait_for_socket(&socket)?;
    let runtime_root = way
        .runtime_root
        .unwrap_or_else(|| dir.join("exec/runtime-runc/moby"));
    let d = Docker {
        runtime_root,
        dir,
        socket,
        runtime: way.runtime,
        binary: way.binary,
        shim: way.shim,
        keeper,
    };
    d.import_image();
    Ok(d)
}

/// dockerd on the suite's containerd, with no network of its own to set
/// up (no bridge, no iptables: the scenarios need none), and `flags` that
/// add the runtime under test.
fn dockerd_command(dir: &Path, containerd: &Path, flags: &[String]) -> Daemon {
    let d = dir.display();
    let command = format!(
        "dockerd --data-root '{d}/data' --exec-root '{d}/exec' --pidfile '{d}/docker.pid' \
         -H 'unix://{d}/docker.sock' --containerd '{}' --bridge=none --iptables=false \
         --ip-masq=false {} >>'{d}/dockerd.log' 2>&1",
        containerd.display(),
        flags.join(" ")
    );
    ("dockerd", command)
}

/// How berth stands behind Docker: what `--runtime` gets, the runtime and
/// shim binaries that must serve the containers, dockerd's flags, the
/// directory to put first on containerd's PATH, and where the runtime's
/// state is when not at Docker's `Root`.
struct Way {
    runtime: &'static str,
    binary: PathBuf,
    shim: PathBuf,
    flags: Vec<String>,
    path_first: PathBuf,
    runtime_root: Option<PathBuf>,
}

fn way_under_test(dir: &Path) -> Result<Way, String> {
    let debug = target_dir().join("debug");
    let mode = std::env::var("BERTH_DOCKER").unwrap_or_else(|_| "runtime".into());
    let stock = |binary: PathBuf, flags: Vec<String>| Way {
        runtime: "berth",
        binary,
        shim: PathBuf::from(STOCK_SHIM),
        flags,
        path_first: PathBuf::from("/usr/bin"),
        runtime_root: None,
    };
    if mode == "runc" {
        return Ok(Way {
            runtime: "runc",
            ..stock(PathBuf::from("/usr/sbin/runc"), vec![])
        });
    }
    for bin in ["containerd-shim-berth-v2", "berth"] {
        if !debug.join(bin).is_file() {
            let missing = debug.join(bin);
            return Err(format!(
                "{} not found: run `cargo build`",
                missing.display()
            ));
        }
    }
    let berth = debug.join("berth");
    let berths_shim = debug.join("containerd-shim-berth-v2");
    let daemon_json = |name: &str| -> Result<Vec<String>, String> {
        let file = dir.join("daemon.json");
        std::fs::write(&file, snippet(name, &debug)).map_err(|e| e.to_string())?;
        Ok(vec![format!("--config-file '{}'", file.display())])
    };
    let add_runtime = || {
        let line = snippet("dockerd-add-runtime", &debug);
        vec![line
            .trim()
            .strip_prefix("dockerd ")
            .unwrap_or(&line)
            .to_owned()]
    };
    let own_shim = |flags| Way {
        shim: berths_shim.clone(),
        path_first: debug.clone(),
        runtime_root: Some(PathBuf::from("/run/containerd/berth/moby")),
        ..stock(berth.clone(), flags)
    };
    match mode.as_str() {
        "runtime" => Ok(stock(berth, add_runtime())),
        "json" => Ok(stock(berth, daemon_json("docker-daemon-json-path")?)),
        "shim" => {
            let shim_dir = dir.join("shim");
            std::fs::create_dir_all(&shim_dir).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(&berths_shim, shim_dir.join("containerd-shim-runc-v2"))
                .map_err(|e| format!("install the shim as containerd-shim-runc-v2: {e}"))?;
            Ok(Way {
                shim: berths_shim.clone(),
                path_first: shim_dir,
                ..stock(berth, add_runtime())
            })
        }
        "shim-type" => Ok(own_shim(daemon_json("docker-daemon-json-shim")?)),
        "shim-path" => Ok(own_shim(daemon_json("docker-daemon-json-shim-path")?)),
        other => Err(format!(
            "BERTH_DOCKER={other}: expected runtime, json, shim, shim-type, shim-path or runc"
        )),
    }
}

impl Docker {
    /// `docker -H SOCKET args...`: the stack's own client.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.program(CLIENT);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .current_dir(&self.dir);
        cmd
    }

    /// `program` where dockerd runs: in the stack's jail, if on one.
    pub fn program(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self.jail() {
            Some(jail) => jail.command(&self.dir, program),
            None => Command::new(program),
        }
    }

    /// Where the host finds `path` of dockerd's filesystem.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match self.jail() {
            Some(jail) => jail.host_path(path),
            None => path.to_owned(),
        }
    }

    /// The jail dockerd runs in, on a stack.
    pub fn jail(&self) -> Option<&Jail> {
        self.keeper.jail.as_ref()
    }

    /// The client's command line up to its first argument (for
    /// [`crate::in_terminal`]).
    pub fn client_argv(&self) -> Vec<String> {
        let host = format!("unix://{}", self.socket.display());
        let mut argv = self.jail().map_or_else(Vec::new, |j| j.argv(&self.dir));
        argv.extend([CLIENT.to_owned(), "-H".to_owned(), host]);
        argv
    }

    /// Runs the docker client with stdin closed.
    pub fn docker(&self, args: &[&str]) -> Out {
        exec::run(&mut self.command(args), &self.logs())
    }

    /// Where the client's output files go.
    pub fn logs(&self) -> PathBuf {
        logs_in(&self.dir)
    }

    /// The busybox rootfs as an image: `docker import` of its layer, with
    /// the PATH the image config would carry.
    fn import_image(&self) {
        let layer = self.dir.join("layer.tar");
        rootfs_layer(&layer, &self.logs());
        let env = format!("ENV {IMAGE_PATH}");
        let layer = layer.to_str().expect("a UTF-8 path");
        self.docker(&["import", "-c", &env, layer, DOCKER_IMAGE])
            .assert_ok();
    }
}

/// One container of a scenario, with a unique name and the marker variable
/// in its environment (so its processes can be found), its id written to a
/// cidfile; force-removed on drop so that a failed scenario does not leak
/// into the next.
pub struct Container<'a> {
    pub name: String,
    pub docker: &'a Docker,
}

impl Docker {
    pub fn container(&self) -> Container<'_> {
        Container {
            name: crate::unique_name(),
            docker: self,
        }
    }
}

impl Container<'_> {
    fn marker(&self) -> String {
        format!("BERTH_IT={}", self.name)
    }

    fn cidfile(&self) -> PathBuf {
        self.docker.logs().join(format!("{}.cid", self.name))
    }

    /// `docker run --name N --cidfile F --runtime R -e MARKER [flags...]
    /// IMAGE args...`.
    pub fn run_args(&self, flags: &[&str], args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["run", "--name", &self.name, "--cidfile"]
            .map(str::to_owned)
            .into();
        all.push(self.cidfile().display().to_string());
        all.extend(["--runtime", self.docker.runtime, "-e", &self.marker()].map(str::to_owned));
        all.extend(flags.iter().map(|f| f.to_string()));
        all.push(DOCKER_IMAGE.to_owned());
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// `docker run [flags...] ... args...` to the end.
    pub fn run(&self, flags: &[&str], args: &[&str]) -> Out {
        let all = self.run_args(flags, args);
        self.docker
            .docker(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `docker run -d [flags...] ... args...`, asserting success.
    #[track_caller]
    pub fn run_detached(&self, flags: &[&str], args: &[&str]) {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        self.run(&all, args).assert_ok();
    }

    /// `docker VERB [flags...] NAME args...`.
    pub fn verb(&self, verb: &str, flags: &[&str], args: &[&str]) -> Out {
        let mut all = vec![verb];
        all.extend_from_slice(flags);
        all.push(&self.name);
        all.extend_from_slice(args);
        self.docker.docker(&all)
    }

    /// A field of `docker inspect`, by Go template.
    #[track_caller]
    pub fn inspect(&self, template: &str) -> String {
        let out = self.verb("inspect", &["-f", template], &[]);
        out.assert_ok().stdout.trim().to_owned()
    }

    /// The container's id, as Docker wrote it to the cidfile.
    #[track_caller]
    pub fn id(&self) -> String {
        std::fs::read_to_string(self.cidfile()).expect("docker wrote the cidfile")
    }

    /// The pid of the container's init that Docker reports (in dockerd's
    /// pid namespace: the jail's, on a stack).
    #[track_caller]
    pub fn docker_pid(&self) -> i64 {
        let pid = self.inspect("{{.State.Pid}}");
        pid.parse().unwrap_or_else(|_| panic!("pid {pid:?}"))
    }

    /// The host's pid of the container's init.
    #[track_caller]
    pub fn pid(&self) -> i64 {
        let pid = self.docker_pid();
        let Some(jail) = self.docker.jail() else {
            return pid;
        };
        let host = jail.host_pid(pid as libc::pid_t);
        i64::from(host.unwrap_or_else(|| panic!("no host process is the jail's {pid}")))
    }

    /// The pid of the shim that serves the container.
    pub fn shim_pid(&self) -> Option<libc::pid_t> {
        crate::leftovers::shim_of(&self.id())
    }

    /// Polls `docker inspect` until `template` gives `want`.
    #[track_caller]
    pub fn wait_for(&self, template: &str, want: &str) {
        let what = format!("{}: {template} never became {want:?}", self.name);
        exec::poll(&what, || self.inspect(template), |got| got == want);
    }

    /// Asserts that nothing of the container is left: no container in
    /// Docker, no shim, no process of the container, no runtime state.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        crate::leftovers::assert_none_left(&self.name, DAEMON_GRACE, || self.leftovers());
    }

    /// Asserts that no process of the container runs.
    #[track_caller]
    pub fn assert_no_processes(&self) {
        crate::leftovers::assert_none_marked(&self.name, &self.marker());
    }

    fn leftovers(&self) -> Vec<String> {
        let id = self.id();
        let mut found = crate::leftovers::daemon_leftovers(&id, &self.marker());
        let listed = self.docker.docker(&["ps", "-aq", "--no-trunc"]).stdout;
        if listed.lines().any(|l| l == id) {
            found.push("container in `docker ps -a`".to_owned());
        }
        let state = self.docker.host_path(&self.docker.runtime_root).join(&id);
        if state.exists() {
            found.push(format!("directory {}", state.display()));
        }
        found
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.verb("rm", &["-f"], &[]);
    }
}
