//! Waiting for the next OOM kill. On v2 the kernel marks memory.events
//! modified when it counts one, so inotify wakes the waiter at once: under
//! systemd an emptied scope (and its counters) is gone moments later. v1's
//! counter gives no such notice and is polled; its cgroup stays until
//! `delete`.

use super::{Cgroup, Version};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::AsFd;
use std::time::Duration;

pub struct OomWatch {
    inotify: Option<Inotify>,
}

impl OomWatch {
    /// A watch on `cg`; where it cannot be had, `wait` just sleeps.
    pub fn new(cg: &Cgroup) -> OomWatch {
        let file = match cg.version {
            Version::V2 => cg.dir_of("memory").ok().map(|d| d.join("memory.events")),
            Version::V1 => None,
        };
        let inotify = file.and_then(|f| {
            let i = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
            i.add_watch(&f, AddWatchFlags::IN_MODIFY).ok()?;
            Some(i)
        });
        OomWatch { inotify }
    }

    /// Returns when the OOM counter may have changed, or after `limit`.
    pub fn wait(&self, limit: Duration) {
        let Some(i) = &self.inotify else {
            return std::thread::sleep(limit);
        };
        let ms = limit.as_millis().min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(i.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, timeout).is_ok_and(|n| n > 0) {
            let _ = i.read_events();
        }
    }
}
