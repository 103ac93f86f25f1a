//! OOM events: a rise of the `oom_kill` count of the container's memory
//! cgroup, watched by berth's [`OomWatch`]. A thread per container checks
//! it whenever the kernel signals, and the shim checks it again whenever
//! one of the container's processes exits: v1 signals before the kill is
//! counted, so the thread's check can come too early, and an OOM kill
//! always ends a process.

use berth::cgroups::oom::OomWatch;
use berth::error::OsError;
use std::sync::{Arc, Mutex};

/// The OOM kills of one container's cgroup, and what to do at each.
pub struct OomEvents {
    watch: OomWatch,
    seen: Mutex<u64>,
    on_oom: Box<dyn Fn() + Send + Sync>,
}

impl OomEvents {
    /// Calls `on_oom` if the count rose since the last check.
    pub fn check(&self) {
        let now = self.watch.kills();
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
) -> Result<Option<Arc<OomEvents>>, OsError> {
    let Some(watch) = OomWatch::of_pid(pid)? else {
        return Ok(None);
    };
    let events = Arc::new(OomEvents {
        seen: Mutex::new(watch.kills()),
        watch,
        on_oom: Box::new(on_oom),
    });
    let checker = Arc::clone(&events);
    std::thread::spawn(move || {
        while checker.watch.wait(None).is_ok() && !checker.watch.is_gone() {
            checker.check();
        }
    });
    Ok(Some(events))
}
