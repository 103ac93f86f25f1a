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
    kills: Box<dyn Fn() -> u64 + Send + Sync>,
    seen: Mutex<u64>,
    on_oom: Box<dyn Fn() + Send + Sync>,
}

impl OomEvents {
    /// Kills counted by `kills` from now on call `on_oom`.
    fn new(
        kills: impl Fn() -> u64 + Send + Sync + 'static,
        on_oom: impl Fn() + Send + Sync + 'static,
    ) -> OomEvents {
        OomEvents {
            seen: Mutex::new(kills()),
            kills: Box::new(kills),
            on_oom: Box::new(on_oom),
        }
    }

    /// Calls `on_oom` if the count rose since the last check; a check
    /// running meanwhile waits for it, so that an exit reported after
    /// this returns comes after the OOM event.
    pub fn check(&self) {
        let mut seen = self.seen.lock().unwrap();
        let now = (self.kills)();
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
    let watch = Arc::new(watch);
    let counter = Arc::clone(&watch);
    let events = Arc::new(OomEvents::new(move || counter.kills(), on_oom));
    let checker = Arc::clone(&events);
    std::thread::spawn(move || {
        while watch.wait(None).is_ok() && !watch.is_gone() {
            checker.check();
        }
    });
    Ok(Some(events))
}

/// Events from a count the test raises.
#[cfg(test)]
pub fn counting(
    kills: Arc<std::sync::atomic::AtomicU64>,
    on_oom: impl Fn() + Send + Sync + 'static,
) -> Arc<OomEvents> {
    use std::sync::atomic::Ordering;
    Arc::new(OomEvents::new(move || kills.load(Ordering::SeqCst), on_oom))
}
