//! The engine stack a daemon suite runs on: the host's own Debian 12
//! packages (containerd 1.6, Docker 20.10), or a newer Debian release built
//! by `hack/stack` as a chroot (`trixie`: containerd 1.7, Docker 26, podman
//! 5.4; `sid`: containerd 2.1, Docker 28, podman 5.8), picked by
//! `$BERTH_STACK`.
//!
//! A chroot's daemons run in mount, network and pid namespaces of their own
//! (on an overlay of the cached chroot, so it stays clean), so they never
//! meet the host's daemons nor touch the host's network. The workspace's
//! `target` directory is bound at the same path inside: the suites' daemon
//! directories, sockets, logs and the berth binaries under test have one
//! path on both sides, and only commands that must see the stack's
//! processes or network go through [`Jail::command`].

use crate::workspace;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Debian release to run the daemons from.
pub struct Stack {
    /// The chroot `hack/stack` built.
    chroot: PathBuf,
}

/// The versions of the engines a stack brings (their first digits), which
/// the suites check they are talking to.
pub struct Engines {
    pub suite: &'static str,
    pub containerd: &'static str,
    pub docker: &'static str,
    pub podman: Option<&'static str>,
}

const STACKS: [Engines; 3] = [
    Engines {
        suite: "host",
        containerd: "1.6.",
        docker: "20.10.",
        podman: None,
    },
    Engines {
        suite: "trixie",
        containerd: "1.7.",
        docker: "26.",
        podman: Some("5.4."),
    },
    Engines {
        suite: "sid",
        containerd: "2.1.",
        docker: "28.",
        podman: Some("5.8."),
    },
];

/// The engines of the stack `$BERTH_STACK` names (`host` when unset).
pub fn engines() -> Result<&'static Engines, String> {
    let suite = std::env::var("BERTH_STACK").unwrap_or_else(|_| "host".into());
    STACKS.iter().find(|e| e.suite == suite).ok_or_else(|| {
        let known: Vec<&str> = STACKS.iter().map(|e| e.suite).collect();
        format!("BERTH_STACK={suite}: expected one of {}", known.join(", "))
    })
}

/// The stack `$BERTH_STACK` names: None for the host's own packages.
pub fn under_test() -> Result<Option<Stack>, String> {
    let suite = engines()?.suite;
    if suite == "host" {
        return Ok(None);
    }
    named(suite).map(Some)
}

/// An idle jail on the chroot of `suite` (its keeper alone runs there),
/// for scenarios that run the runtime's command line on a newer stack:
/// CRIU that works on this kernel comes with sid. Scratch files live in
/// `dir`, which goes with the keeper.
pub fn idle_jail(suite: &str, dir: &Path) -> Result<crate::containerd::Keeper, String> {
    let stack = named(suite)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    crate::containerd::keep(dir, dir, &[], Some(&stack))
}

impl Stack {
    /// Where the jail finds `path`: a file of the chroot at its own path
    /// there, anything else (the shared target directory) unchanged.
    pub fn inside(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.chroot) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => path.to_owned(),
        }
    }
}

/// The chroot holding `path` (a stack's own runtime), and its path there.
pub fn chroot_of(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let stacks = workspace().join(".cache/stacks");
    let rest = path.strip_prefix(&stacks).ok()?;
    let suite = rest.components().next()?;
    let inside = rest.strip_prefix(suite).ok()?;
    Some((stacks.join(suite), Path::new("/").join(inside)))
}

/// The chroot `hack/stack` built for `suite`.
pub fn named(suite: &str) -> Result<Stack, String> {
    let chroot = workspace().join(".cache/stacks").join(suite);
    if !chroot.join("usr/bin/containerd").is_file() {
        return Err(format!(
            "BERTH_STACK={suite}: no chroot at {} (run `hack/stack {suite}`)",
            chroot.display()
        ));
    }
    Ok(Stack { chroot })
}

/// Mounts the chroot's overlay with /proc, /sys (the host's cgroups bound
/// in), /dev, a fresh /run and /tmp, and the shared directory at its own
/// path, brings up loopback, makes the overlay the root of the mount
/// namespace, and runs the rest of its arguments there. It runs as pid 1 of
/// the new pid and mount namespaces, so the tmpfs at /mnt that holds the
/// overlay's writable layer and mount point is the jail's alone and goes
/// with it: nothing is left to remove, and no mount point sits under the
/// shared directory (where it would keep the keeper from removing its own
/// directory). `pivot_root`, not a chroot: a process that joins a
/// container's mount namespace gets that namespace's root, which a runtime
/// under a chroot never moves, so an exec'd process would land in the
/// host's root instead of the container's.
const ENTER: &str = r#"set -e
lower=$1 share=$2
shift 2
top=/mnt r=/mnt/root
mkdir -p "$top"
mount -t tmpfs tmpfs "$top"
mkdir -p "$top/upper" "$top/work" "$r"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$top/upper,workdir=$top/work" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
mkdir -p "$r$share" "$r/.old"
mount --bind "$share" "$r$share"
ip link set lo up
cd "$r"
pivot_root . .old
exec chroot . sh -c 'umount -l /.old && rmdir /.old && exec "$@"' enter "$@"
"#;

impl Stack {
    /// `argv` (a shell and its script, run with `PATH` as given) in new
    /// namespaces on this stack. The namespaces go when `argv` ends (or
    /// when the returned command dies: `--kill-child`).
    pub(crate) fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--net", "--pid", "--fork", "--kill-child"])
            .args(["--propagation", "private", "sh", "-c", ENTER, "enter"])
            .arg(&self.chroot)
            .arg(crate::target_dir())
            .args(argv);
        cmd
    }
}

/// Who runs the rootless engines, and the first of the 65536 subordinate
/// ids the jail's /etc/subuid and /etc/subgid grant them.
pub const ROOTLESS_USER: u32 = 65534;
pub const SUBORDINATE: u32 = 200000;

/// What the jail's root sets up for a rootless engine with its files in
/// `dir` (its `home` and `xdg`): the user's subordinate ids, a /dev/net/tun
/// of the jail's own that any user may open (pasta and slirp4netns need
/// it; the host's is root's alone), and `dir` the user's.
pub fn rootless_setup(dir: &Path) -> String {
    let (user, first, d) = (ROOTLESS_USER, SUBORDINATE, dir.display());
    format!(
        "echo {user}:{first}:65536 >/etc/subuid && cp /etc/subuid /etc/subgid && \
         mkdir -p '{d}/home' '{d}/xdg' && chown -R {user}:{user} '{d}' && \
         {{ mountpoint -q /dev/net || mount -t tmpfs -o mode=755 tmpfs /dev/net; }} && \
         {{ [ -c /dev/net/tun ] || mknod -m 666 /dev/net/tun c 10 200; }}"
    )
}

/// The command line's start that runs a program as [`ROOTLESS_USER`], as a
/// login would: no other groups, its `USER`, `HOME` and `XDG_RUNTIME_DIR`
/// (`dir/home`, `dir/xdg`).
pub fn as_rootless_user(dir: &Path) -> Vec<String> {
    let id = ROOTLESS_USER;
    let mut argv: Vec<String> = [
        "setpriv",
        &format!("--reuid={id}"),
        &format!("--regid={id}"),
    ]
    .map(str::to_owned)
    .into();
    argv.extend(["--clear-groups", "env", "USER=nobody"].map(str::to_owned));
    for (var, sub) in [("HOME", "home"), ("XDG_RUNTIME_DIR", "xdg")] {
        argv.push(format!("{var}={}", dir.join(sub).display()));
    }
    argv
}

/// The running namespaces of a stack: its pid 1, the keeper shell.
pub struct Jail {
    init: libc::pid_t,
}

impl Jail {
    /// The jail whose `unshare` process is `unshare`: its only child, once
    /// it has entered the chroot (its root is no longer ours) and let go
    /// of the old root (until then, a runtime that reads the jail's mount
    /// table finds /sys under /.old).
    pub(crate) fn of(unshare: u32) -> Result<Jail, String> {
        let children = format!("/proc/{unshare}/task/{unshare}/children");
        let ours = root_id(Path::new("/"));
        let entered = || -> Option<libc::pid_t> {
            let text = std::fs::read_to_string(&children).ok()?;
            let init = text.split_whitespace().next()?.parse().ok()?;
            let root = root_id(Path::new(&format!("/proc/{init}/root")));
            let mounts = std::fs::read_to_string(format!("/proc/{init}/mountinfo")).ok()?;
            let old_root = mounts.lines().any(|l| l.contains(" /.old"));
            (root.is_some() && root != ours && !old_root).then_some(init)
        };
        let start = std::time::Instant::now();
        loop {
            if let Some(init) = entered() {
                return Ok(Jail { init });
            }
            if start.elapsed() > crate::exec::DEADLINE {
                return Err(format!("the stack's jail never came up ({children})"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The command line that runs a program in the jail, in the jail's
    /// root directory (nsenter opens a directory it is given before it
    /// enters, which leaves the program a cwd it cannot name).
    pub fn argv(&self) -> Vec<String> {
        let init = self.init.to_string();
        ["nsenter", "-t", &init, "-m", "-n", "-p", "-r", "-w"]
            .map(str::to_owned)
            .into()
    }

    /// `program` to run in the jail.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let argv = self.argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).arg(program);
        cmd
    }

    /// The jail's namespace of `kind` (`net`, `pid`, `mnt`, ...), as the
    /// host names it.
    pub fn ns(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.init))
    }

    /// The jail's mount table.
    pub fn mountinfo(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/mountinfo", self.init))
    }

    /// Where the host finds the jail's `path` (through its init's root).
    pub fn host_path(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.init)).join(relative)
    }

    /// The host's pid of the jail's process `pid`: the process whose pid in
    /// the jail's namespace (the second of its `NSpid`) is `pid` and whose
    /// parents lead to the jail's init.
    pub fn host_pid(&self, pid: libc::pid_t) -> Option<libc::pid_t> {
        crate::leftovers::all_pids()
            .find(|&host| nspids(host).get(1) == Some(&pid) && self.is_ancestor_of(host))
    }

    fn is_ancestor_of(&self, mut pid: libc::pid_t) -> bool {
        while pid > 1 {
            if pid == self.init {
                return true;
            }
            pid = parent(pid).unwrap_or(0);
        }
        false
    }
}

/// The device and inode of a root directory.
fn root_id(root: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root).ok()?;
    Some((m.dev(), m.ino()))
}

/// The `NSpid` line of a process: its pid in each pid namespace, outermost
/// first.
fn nspids(pid: libc::pid_t) -> Vec<libc::pid_t> {
    status_field(pid, "NSpid:")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent(pid: libc::pid_t) -> Option<libc::pid_t> {
    status_field(pid, "PPid:")?.trim().parse().ok()
}

fn status_field(pid: libc::pid_t, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    Some(line[name.len()..].to_owned())
}
