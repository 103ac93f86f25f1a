//! Watching a memory cgroup's OOM kills, for `berth events` and the shim:
//! the `oom_kill` count (v1 `memory.oom_control`, v2 `memory.events`) and
//! a wait that returns when the kernel signals it may have changed. v2
//! marks memory.events modified when it counts a kill, so inotify wakes
//! the waiter at once: under systemd an emptied scope (and its counters)
//! is gone moments later. v1 signals an eventfd registered on
//! memory.oom_control, but before the kill is counted, so a check right
//! after a v1 wake can come too early and callers look again later.

use super::{Cgroup, Version};
use crate::error::{Context, OsError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the kernel tells that the memory state may have changed.
enum Notice {
    V1(EventFd),
    V2(Inotify),
}

/// The OOM kill count of one memory cgroup, and its kernel notice.
pub struct OomWatch {
    dir: PathBuf,
    file: PathBuf,
    notice: Notice,
}

impl OomWatch {
    /// A watch on the container's memory cgroup; None when the host has
    /// no memory controller.
    pub fn of_cgroup(cg: &Cgroup) -> Result<Option<OomWatch>, OsError> {
        let Ok(dir) = cg.dir_of("memory") else {
            return Ok(None);
        };
        OomWatch::open(dir, cg.version).map(Some)
    }

    /// A watch on `pid`'s memory cgroup, found from /proc; None when it
    /// has none.
    pub fn of_pid(pid: u32) -> Result<Option<OomWatch>, OsError> {
        let Some((dir, version)) = memory_cgroup(pid) else {
            return Ok(None);
        };
        OomWatch::open(dir, version).map(Some)
    }

    fn open(dir: PathBuf, version: Version) -> Result<OomWatch, OsError> {
        let file = dir.join(counter_file(version));
        let what = || format!("watch {} for OOM", file.display());
        let notice = match version {
            Version::V1 => {
                let control = File::open(&file).context(what())?;
                let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).context(what())?;
                let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
                let event_control = dir.join("cgroup.event_control");
                std::fs::write(&event_control, line)
                    .context(format!("watch {} for OOM", event_control.display()))?;
                // The registration holds the file; our fd may go.
                Notice::V1(efd)
            }
            Version::V2 => {
                let inotify = Inotify::init(InitFlags::IN_CLOEXEC).context(what())?;
                inotify
                    .add_watch(&file, AddWatchFlags::IN_MODIFY)
                    .context(what())?;
                Notice::V2(inotify)
            }
        };
        Ok(OomWatch { dir, file, notice })
    }

    /// OOM kills so far (0 once the cgroup is gone).
    pub fn kills(&self) -> u64 {
        read_kills(&self.file)
    }

    /// Whether the cgroup has been removed.
    pub fn is_gone(&self) -> bool {
        !self.dir.exists()
    }

    /// Returns when the kernel signals that the count may have changed
    /// (or the cgroup went), when a signal interrupts the wait, or after
    /// `limit`; without a limit it waits for the kernel.
    pub fn wait(&self, limit: Option<Duration>) -> Result<(), OsError> {
        let timeout = limit.map_or(PollTimeout::NONE, |l| {
            let ms = l.as_millis().min(i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        });
        let what = || format!("wait for OOM in {}", self.file.display());
        let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(()),
            // Read, so that the next wait blocks again.
            Ok(_) => match &self.notice {
                Notice::V1(efd) => efd.read().map(drop).context(what()),
                Notice::V2(inotify) => inotify.read_events().map(drop).context(what()),
            },
            Err(e) => Err(OsError::new(what(), e)),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.notice {
            Notice::V1(efd) => efd.as_fd(),
            Notice::V2(inotify) => inotify.as_fd(),
        }
    }
}

/// The file of a memory cgroup that counts its OOM kills.
fn counter_file(version: Version) -> &'static str {
    match version {
        Version::V1 => "memory.oom_control",
        Version::V2 => "memory.events",
    }
}

/// The OOM kills counted in the memory cgroup `dir`.
pub(super) fn kills_in(dir: &Path, version: Version) -> u64 {
    read_kills(&dir.join(counter_file(version)))
}

fn read_kills(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    count(&text, "oom_kill")
}

fn count(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The memory cgroup directory of `pid`, and the cgroup version.
fn memory_cgroup(pid: u32) -> Option<(PathBuf, Version)> {
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let root = Path::new(super::ROOT);
    let unified = root.join("cgroup.controllers").exists();
    lines.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let path = path.trim_start_matches('/');
        match unified {
            true => controllers
                .is_empty()
                .then(|| (root.join(path), Version::V2)),
            false => controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| (root.join("memory").join(path), Version::V1)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_count_is_read_from_either_file() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        let v2 = "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!((count(v1, "oom_kill"), count(v2, "oom_kill")), (3, 2));
        assert_eq!(count("", "oom_kill"), 0);
    }
}
