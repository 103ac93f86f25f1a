//! A podman of the test suite's own (its storage, run root and
//! containers.conf under one directory) on a newer stack: podman 5.4
//! (trixie) or 5.8 (sid), run in the stack's jail (see [`crate::stack`]).
//! podman has no daemon: each client call runs there, and conmon stays
//! behind as the container's monitor.
//!
//! `$BERTH_PODMAN` picks how podman finds berth:
//! - `conf` (default): `containers.conf`'s `[engine.runtimes]` names berth
//!   (the snippet of `docs/install.md`), and `--runtime berth` picks it;
//! - `path`: `--runtime` gives the berth binary's path;
//! - `runc`: the stack's runc, to prove the scenarios honest.
//!
//! [`rootless_podman`] is the same podman run by a user who is not root
//! (see [`stack::as_rootless_user`]), as rootless podman
//! users run it: in a user namespace of its own, through newuidmap and
//! newgidmap, with pasta's network, and on this cgroup v1 host no cgroup.

use crate::containerd::{keep, logs_in, need_root_and, Keeper};
use crate::docs::snippet;
use crate::engine::{import_image, Engine};
use crate::stack;
use crate::target_dir;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Podman {
    pub dir: PathBuf,
    /// What `podman run --runtime` gets, and the binary it stands for.
    runtime: String,
    pub binary: PathBuf,
    /// Where podman tells the runtime to keep its state.
    runtime_root: PathBuf,
    /// The jail's pid 1 (no daemon to keep); its stdin open for the life
    /// of the test process.
    keeper: Keeper,
    /// Whether podman runs as [`stack::ROOTLESS_USER`].
    rootless: bool,
}

/// The suite's podman, or why there is none. Under `CI=true` a missing
/// prerequisite panics; otherwise the caller skips, printing the reason.
pub fn podman() -> Result<&'static Podman, String> {
    static PODMAN: OnceLock<Result<Podman, String>> = OnceLock::new();
    crate::prerequisite(&PODMAN, || start(false))
}

/// The suite's rootless podman, or why there is none (as [`podman`]).
pub fn rootless_podman() -> Result<&'static Podman, String> {
    static PODMAN: OnceLock<Result<Podman, String>> = OnceLock::new();
    crate::prerequisite(&PODMAN, || start(true))
}

/// Skips the calling test, saying why, when there is no podman (and fails
/// it under CI); else evaluates to the suite's podman.
#[macro_export]
macro_rules! podman_or_skip {
    () => {
        $crate::or_skip!($crate::podman())
    };
}

/// As [`podman_or_skip`], for the rootless podman.
#[macro_export]
macro_rules! rootless_podman_or_skip {
    () => {
        $crate::or_skip!($crate::rootless_podman())
    };
}

fn start(rootless: bool) -> Result<Podman, String> {
    need_root_and(&["tar", "script", "unshare", "nsenter"])?;
    let Some(stack) = stack::under_test()? else {
        return Err("podman runs on a newer stack: set BERTH_STACK=trixie or sid".into());
    };
    let dir = target_dir().join(format!("podman-it.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["podman", "home", "xdg"] {
        let made = std::fs::create_dir_all(dir.join(sub));
        made.map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let built = crate::build_dir();
    let conf = snippet("podman-containers-conf", &built);
    std::fs::write(dir.join("containers.conf"), conf).map_err(|e| e.to_string())?;
    let berth = built.join("berth");
    let (runtime, binary) = match std::env::var("BERTH_PODMAN").as_deref() {
        Ok("conf") | Err(_) => ("berth".to_owned(), berth),
        Ok("path") => (berth.display().to_string(), berth),
        Ok("runc") => ("runc".to_owned(), PathBuf::from("/usr/sbin/runc")),
        Ok(other) => return Err(format!("BERTH_PODMAN={other}: expected conf, path or runc")),
    };
    if !binary.starts_with("/usr") && !binary.is_file() {
        return Err(format!("{} not found: run `cargo build`", binary.display()));
    }
    let keeper = keep(&dir, &built, &[], Some(&stack))?;
    if rootless {
        let mut setup = keeper.program(&"sh");
        setup.args(["-c", &stack::rootless_setup(&dir)]);
        crate::exec::run(&mut setup, &logs_in(&dir)).assert_ok();
    }
    let name = binary.file_name().unwrap_or_default().to_string_lossy();
    let runtime_root = match rootless {
        true => dir.join("xdg"),
        false => PathBuf::from("/run"),
    };
    let p = Podman {
        runtime_root: runtime_root.join(&*name),
        dir,
        runtime,
        binary,
        keeper,
        rootless,
    };
    import_image(&p);
    Ok(p)
}

impl Engine for Podman {
    fn client_argv(&self) -> Vec<String> {
        let jail = self.jail().expect("podman runs in a jail");
        let mut argv = jail.argv();
        let conf = format!(
            "CONTAINERS_CONF={}",
            self.dir.join("containers.conf").display()
        );
        let store = self.dir.join("podman");
        let quiet = "PODMAN_IGNORE_CGROUPSV1_WARNING=1".to_owned();
        match self.rootless {
            true => argv.extend(stack::as_rootless_user(&self.dir)),
            false => argv.push("env".to_owned()),
        }
        argv.extend([conf, quiet, "podman".to_owned()]);
        for (flag, value) in [
            ("--root", store.join("root").display().to_string()),
            ("--runroot", store.join("run").display().to_string()),
            ("--cgroup-manager", "cgroupfs".to_owned()),
            ("--events-backend", "file".to_owned()),
        ] {
            argv.extend([flag.to_owned(), value]);
        }
        argv
    }

    fn removed_id(&self, name: &str) -> Option<String> {
        let filter = format!("container={name}");
        let args = [
            "events",
            "--stream=false",
            "--filter",
            &filter,
            "--format",
            "{{.ID}}",
        ];
        let out = self.cli(&args);
        out.stdout.lines().next().map(str::to_owned)
    }

    /// podman's `rm -f` stops with a timeout first (10 s by default).
    fn rm_flags(&self) -> &'static [&'static str] {
        &["-f", "-t", "0"]
    }

    fn runtime(&self) -> &str {
        &self.runtime
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
