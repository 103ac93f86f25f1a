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
//!
//! [`rootless_docker`] is Docker run by a user who is not root (see
//! [`stack::as_rootless_user`]) on a stack, as Docker's rootless mode runs
//! it: `dockerd-rootless.sh` (rootlesskit's user namespace from the user's
//! subordinate ids, slirp4netns' network, a containerd of dockerd's own),
//! with the `runtime`, `json` or `runc` way.

use crate::containerd::{
    containerd_command, keep, need_root_and, wait_for_socket, write_config, Daemon, Keeper,
};
use crate::docs::snippet;
use crate::engine::{import_image, Engine};
use crate::netns::Netns;
use crate::stack;
use crate::target_dir;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// The suite's rootless dockerd, or why there is none (as [`docker`]).
pub fn rootless_docker() -> Result<&'static Docker, String> {
    static DOCKER: OnceLock<Result<Docker, String>> = OnceLock::new();
    crate::prerequisite(&DOCKER, start_rootless)
}

/// As [`docker_or_skip`], for the rootless dockerd.
#[macro_export]
macro_rules! rootless_docker_or_skip {
    () => {
        $crate::or_skip!($crate::rootless_docker())
    };
}

fn start_rootless() -> Result<Docker, String> {
    need_root_and(&["tar", "script", "unshare", "nsenter"])?;
    let Some(stack) = stack::under_test()? else {
        return Err("rootless Docker runs on a newer stack: set BERTH_STACK=trixie or sid".into());
    };
    let dir = target_dir().join(format!("docker-rootless-it.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let way = way_under_test(&dir)?;
    if way.runtime_root.is_some() || way.shim != Path::new(STOCK_SHIM) {
        return Err("rootless Docker takes BERTH_DOCKER=runtime, json or runc".into());
    }
    let d = dir.display();
    let command = format!(
        "sh -c \"{setup}\" && PATH=/usr/share/docker.io/contrib:$PATH exec {user} \
         dockerd-rootless.sh --data-root '{d}/data' {flags} >>'{d}/dockerd.log' 2>&1",
        setup = stack::rootless_setup(&dir),
        user = stack::as_rootless_user(&dir).join(" "),
        flags = way.flags.join(" ")
    );
    let keeper = keep(&dir, &way.path_first, &[("dockerd", command)], Some(&stack))?;
    // dockerd-rootless.sh's exec root and socket: under $XDG_RUNTIME_DIR.
    let xdg = dir.join("xdg");
    let socket = xdg.join("docker.sock");
    wait_for_socket(&socket)?;
    let d = Docker {
        runtime_root: xdg.join("docker/runtime-runc/moby"),
        dir,
        socket,
        runtime: way.runtime,
        binary: way.binary,
        shim: way.shim,
        keeper,
    };
    import_image(&d);
    Ok(d)
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
    let dockerd = dockerd_command(&dir, &address, &way.flags);
    let keeper = match &stack {
        // The stack's jail has a network namespace of its own.
        Some(stack) => {
            let daemons = [containerd_command(&dir), dockerd];
            keep(&dir, &way.path_first, &daemons, Some(stack))?
        }
        None => {
            let netns = Netns::new("berth-docker")?;
            let dockerd = (dockerd.0, netns.enter(&dockerd.1));
            let daemons = [netns.holder(), containerd_command(&dir), dockerd];
            let mut keeper = keep(&dir, &way.path_first, &daemons, None)?;
            keeper.netns = Some(netns.path);
            keeper
        }
    };
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
    import_image(&d);
    Ok(d)
}

/// dockerd on the suite's containerd, with `flags` that add the runtime
/// under test. Its bridge and iptables rules go in a network namespace of
/// its own (the stack's, or the host's [`Netns`]).
fn dockerd_command(dir: &Path, containerd: &Path, flags: &[String]) -> Daemon {
    let d = dir.display();
    let command = format!(
        "dockerd --data-root '{d}/data' --exec-root '{d}/exec' --pidfile '{d}/docker.pid' \
         -H 'unix://{d}/docker.sock' --containerd '{}' {} >>'{d}/dockerd.log' 2>&1",
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
    let built = crate::build_dir();
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
        if !built.join(bin).is_file() {
            let missing = built.join(bin);
            return Err(format!(
                "{} not found: run `cargo build`",
                missing.display()
            ));
        }
    }
    let berth = built.join("berth");
    let berths_shim = built.join("containerd-shim-berth-v2");
    let daemon_json = |name: &str| -> Result<Vec<String>, String> {
        let file = dir.join("daemon.json");
        std::fs::write(&file, snippet(name, &built)).map_err(|e| e.to_string())?;
        Ok(vec![format!("--config-file '{}'", file.display())])
    };
    let add_runtime = || {
        let line = snippet("dockerd-add-runtime", &built);
        vec![line
            .trim()
            .strip_prefix("dockerd ")
            .unwrap_or(&line)
            .to_owned()]
    };
    let own_shim = |flags| Way {
        shim: berths_shim.clone(),
        path_first: built.clone(),
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

impl Engine for Docker {
    fn client_argv(&self) -> Vec<String> {
        let host = format!("unix://{}", self.socket.display());
        let mut argv = self.jail().map_or_else(Vec::new, |j| j.argv());
        argv.extend([CLIENT.to_owned(), "-H".to_owned(), host]);
        argv
    }

    fn runtime(&self) -> &str {
        self.runtime
    }

    fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    fn keeper(&self) -> &Keeper {
        &self.keeper
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
