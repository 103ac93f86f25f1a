//! OOM events: a rise of the `oom_kill` count of the container's memory
//! cgroup (v1 `memory.oom_control`, v2 `memory.events`). A thread per
//! container checks it when the kernel signals (v1: an eventfd registered
//! on `memory.oom_control`; v2: inotify on `memory.events`), and the shim
//! checks it again whenever one of the container's processes exits: v1
//! signals before the kill is counted, so the thread's check can come too
//! early, and an OOM kill always ends a process.

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("watch {path} for OOM: {source}")]
pub struct OomError {
    path: String,
    source: std::io::Error,
}

/// A way to block until the cgroup's memory state may have changed.
enum Waiter {
    V1(EventFd),
    V2(Inotify),
}

/// The OOM kills of one container's cgroup, and what to do at each.
pub struct OomWatch {
    file: PathBuf,
    seen: Mutex<u64>,
    on_oom: Box<dyn Fn() + Send + Sync>,
}

impl OomWatch {
    /// Calls `on_oom` if the count rose since the last check.
    pub fn check(&self) {
        let now = oom_kills(&self.file);
        let mut seen = self.seen.lock().unwrap();
        if now > *seen {
            *seen = now;
            (self.on_oom)();
        }
    }
}

/// Watches `pid`'s memory cgroup from a thread that ends when the cgroup
/// is removed; None when there is no memory controller.
pub fn watch(
    pid: u32,
    on_oom: impl Fn() + Send + Sync + 'static,
) -> Result<Option<Arc<OomWatch>>, OomError> {
    let Some((dir, unified)) = memory_cgroup(pid) else {
        return Ok(None);
    };
    let (file, waiter) = if unified {
        watch_v2(&dir)?
    } else {
        watch_v1(&dir)?
    };
    let watch = Arc::new(OomWatch {
        seen: Mutex::new(oom_kills(&file)),
        file,
        on_oom: Box::new(on_oom),
    });
    let checker = Arc::clone(&watch);
    std::thread::spawn(move || {
        while waiter.wait() && dir.exists() {
            checker.check();
        }
    });
    Ok(Some(watch))
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> OomError + '_ {
    move |source| OomError {
        path: path.display().to_string(),
        source,
    }
}

fn watch_v1(dir: &Path) -> Result<(PathBuf, Waiter), OomError> {
    let control = dir.join("memory.oom_control");
    let file = File::open(&control).map_err(err(&control))?;
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(|e| err(&control)(e.into()))?;
    let line = format!("{} {}", efd.as_raw_fd(), file.as_raw_fd());
    let event_control = dir.join("cgroup.event_control");
    std::fs::write(&event_control, line).map_err(err(&event_control))?;
    // The registration holds the file; our fd may go.
    Ok((control, Waiter::V1(efd)))
}

fn watch_v2(dir: &Path) -> Result<(PathBuf, Waiter), OomError> {
    let events = dir.join("memory.events");
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| err(&events)(e.into()))?;
    inotify
        .add_watch(&events, AddWatchFlags::IN_MODIFY)
        .map_err(|e| err(&events)(e.into()))?;
    Ok((events, Waiter::V2(inotify)))
}

impl Waiter {
    /// Blocks until the kernel signals; false when the wait fails.
    fn wait(&self) -> bool {
        match self {
            Waiter::V1(efd) => efd.read().is_ok(),
            Waiter::V2(inotify) => inotify.read_events().is_ok(),
        }
    }
}

/// The `oom_kill` count in memory.oom_control (v1) or memory.events (v2).
fn oom_kills(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    count(&text, "oom_kill")
}

fn count(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The memory cgroup directory of `pid`, and whether it is cgroup v2.
fn memory_cgroup(pid: u32) -> Option<(PathBuf, bool)> {
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    lines.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let path = path.trim_start_matches('/');
        match unified {
            true => controllers
                .is_empty()
                .then(|| (Path::new("/sys/fs/cgroup").join(path), true)),
            false => controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| (Path::new("/sys/fs/cgroup/memory").join(path), false)),
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
