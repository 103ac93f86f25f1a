//! Finding what a container left behind: state, processes, mounts, fifos.

use crate::bundle::{s, Bundle};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A killed process takes a moment to disappear from /proc.
const GRACE: Duration = Duration::from_secs(2);

impl Bundle {
    /// Asserts that nothing of this container is left: no state under its
    /// `--root`, no process that carries its marker or points into the test
    /// directory, no mount under that directory, no fifo in the bundle or
    /// the state root, no cgroup named after it.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        let what = format!("container {}", self.id);
        assert_none_left(&what, GRACE, || self.leftovers());
    }

    /// What [`Bundle::assert_no_leftovers`] would complain about, now.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found: Vec<String> = entries(&self.state_root)
            .map(|p| format!("state: {}", p.display()))
            .collect();
        found.extend(
            self.stray_pids()
                .iter()
                .map(|(pid, why)| format!("process {pid}: {why}")),
        );
        found.extend(self.mounts().into_iter().map(|m| format!("mount: {m}")));
        found.extend(fifos(&self.path).map(|p| format!("fifo: {}", p.display())));
        found.extend(fifos(&self.state_root).map(|p| format!("fifo: {}", p.display())));
        found.extend(
            self.cgroups()
                .iter()
                .map(|p| format!("cgroup: {}", p.display())),
        );
        if crate::systemd_cgroup() {
            found.extend(units_named(&self.id, &mut Command::new("systemctl")));
        }
        found
    }

    fn cgroups(&self) -> Vec<PathBuf> {
        cgroups_named(&self.id)
    }

    pub(crate) fn kill_strays(&self) {
        for (pid, _) in self.stray_pids() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    pub(crate) fn unmount_all(&self) {
        for target in self.mounts().iter().rev() {
            let c = std::ffi::CString::new(target.as_str()).unwrap();
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }

    /// Mount points in our mount namespace under the test directory.
    fn mounts(&self) -> Vec<String> {
        let prefix = format!("{}/", s(&self.dir));
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        info.lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|target| target.starts_with(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Processes with the container's marker in their environment (the
    /// runtime's forks and the container's processes), the test directory
    /// in their environment or command line (runc's re-executed init names
    /// its state dir there), or cwd/root inside the test directory.
    fn stray_pids(&self) -> Vec<(libc::pid_t, String)> {
        let marker = format!("{}\0", self.marker()).into_bytes();
        let dir = format!("{}/", s(&self.dir)).into_bytes();
        let me = std::process::id() as libc::pid_t;
        let mut strays = Vec::new();
        for pid in all_pids().filter(|&pid| pid != me) {
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            let read = |name: &str| std::fs::read(proc_dir.join(name)).unwrap_or_default();
            let (environ, cmdline) = (read("environ"), read("cmdline"));
            let why = if contains(&environ, &marker) {
                Some("carries the marker".to_owned())
            } else if contains(&environ, &dir) || contains(&cmdline, &dir) {
                Some("names the test directory".to_owned())
            } else {
                ["cwd", "root"].iter().find_map(|link| {
                    let target = std::fs::read_link(proc_dir.join(link)).ok()?;
                    target
                        .starts_with(&self.dir)
                        .then(|| format!("{link} is {}", target.display()))
                })
            };
            if let Some(why) = why {
                let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                strays.push((pid, format!("{why} ({cmd})")));
            }
        }
        strays
    }
}

/// Cgroup directories named after container `id` (`ID`, `prefix-ID`,
/// `ID.scope`, ...) in any hierarchy, a few levels deep.
pub(crate) fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let names_us = |dir: &Path| {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        name.match_indices(id)
            .any(|(at, _)| !name[at + id.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let mut level: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    let mut found = Vec::new();
    for _ in 0..4 {
        level = level
            .iter()
            .flat_map(|d| entries(d))
            .filter(|p| p.is_dir())
            .collect();
        found.extend(level.iter().filter(|d| names_us(d)).cloned());
    }
    found
}

/// The units `systemctl` (a command of it, for one manager or another)
/// still has loaded whose name has `id` in it: a scope systemd keeps,
/// active or failed, after its container went.
pub fn units_named(id: &str, systemctl: &mut Command) -> Vec<String> {
    let pattern = format!("*{id}*");
    let listed = systemctl
        .args(["list-units", "--all", "--plain", "--no-legend", &pattern])
        .output();
    let out = listed.unwrap_or_else(|e| panic!("run systemctl: {e}"));
    let units = String::from_utf8_lossy(&out.stdout);
    units
        .lines()
        .map(|l| format!("systemd unit: {l}"))
        .collect()
}

/// Mount points whose path names `id`, in the mount namespace whose
/// `mountinfo` is given (`/proc/self/mountinfo` for ours).
pub(crate) fn mounts_naming(id: &str, mountinfo: &Path) -> Vec<String> {
    let info = std::fs::read_to_string(mountinfo).unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|target| target.contains(id))
        .map(str::to_owned)
        .collect()
}

/// A daemon takes a moment to reap a shim and forget a container.
pub(crate) const DAEMON_GRACE: Duration = Duration::from_secs(5);

/// Asserts that `find` finds nothing left of `what` within `grace`.
#[track_caller]
pub(crate) fn assert_none_left(what: &str, grace: Duration, find: impl Fn() -> Vec<String>) {
    let start = Instant::now();
    let mut found = find();
    while !found.is_empty() && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
        found = find();
    }
    assert!(found.is_empty(), "{what} left behind: {found:#?}");
}

/// The shim (containerd's or berth's) that serves container `id`: its
/// command line names the id.
pub(crate) fn shim_of(id: &str) -> Option<libc::pid_t> {
    let needle = format!("-id\0{id}\0").into_bytes();
    all_pids().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        contains(&cmdline, b"containerd-shim") && contains(&cmdline, &needle)
    })
}

/// What is left of a container run by a daemon: its shim, and the
/// processes with `marker` (`NAME=VALUE`) in their environment.
pub(crate) fn daemon_leftovers(id: &str, marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(pid) = shim_of(id) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(format!("shim process {pid}: {cmdline}"));
    }
    found.extend(marked(marker));
    found
}

/// Processes whose command line names container `id` (a shim, conmon).
pub(crate) fn naming(id: &str) -> Vec<String> {
    let id = id.as_bytes();
    all_pids()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            contains(&cmdline, id).then(|| {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                format!("process {pid} names it: {cmdline}")
            })
        })
        .collect()
}

/// Asserts that no process with `marker` in its environment runs (soon).
#[track_caller]
pub(crate) fn assert_none_marked(what: &str, marker: &str) {
    assert_none_left(what, DAEMON_GRACE, || marked(marker));
}

/// The processes with `marker` (`NAME=VALUE`) in their environment.
pub(crate) fn marked(marker: &str) -> Vec<String> {
    let pids = marked_pids(marker).into_iter();
    pids.map(|pid| format!("container process {pid}")).collect()
}

pub(crate) fn marked_pids(marker: &str) -> Vec<libc::pid_t> {
    let marker = format!("{marker}\0").into_bytes();
    let carries = |pid: &libc::pid_t| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        contains(&environ, &marker)
    };
    all_pids().filter(carries).collect()
}

pub(crate) fn all_pids() -> impl Iterator<Item = libc::pid_t> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn entries(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path()))
}

/// Fifos in `dir` and, for the state root, its container directories.
fn fifos(dir: &Path) -> impl Iterator<Item = PathBuf> {
    entries(dir)
        .flat_map(|p| {
            if p.is_dir() && !p.ends_with("rootfs") {
                entries(&p).collect()
            } else {
                vec![p]
            }
        })
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.file_type().is_fifo()))
}
