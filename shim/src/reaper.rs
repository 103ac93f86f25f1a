//! The shim is the subreaper of every process the runtime starts: the
//! runtime's own short-lived commands, container inits and exec'd processes.
//! One thread reaps them all with `waitpid(-1)` and hands each exit to
//! whoever watches that pid. Nothing else in the shim may call `wait`, or it
//! would steal exits from this table.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an exit nobody watches is kept: a watcher registers right after
/// it learns the pid (from a pid file), so it is never late by more than
/// the time a runtime command takes; orphans the shim inherits are dropped.
const UNCLAIMED_FOR: Duration = Duration::from_secs(120);

/// How a process ended: its exit code, or 128+N when killed by signal N.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub status: u32,
    pub at: SystemTime,
}

impl Exit {
    /// An exit with `status`, happening now.
    pub fn now(status: u32) -> Exit {
        Exit {
            status,
            at: SystemTime::now(),
        }
    }

    pub fn since_epoch(&self) -> Duration {
        self.at.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

type Watcher = Box<dyn FnOnce(Exit) + Send>;

enum Entry {
    Exited(Exit),
    Watched(Watcher),
}

#[derive(Default)]
pub struct Reaper {
    table: Mutex<HashMap<i32, Entry>>,
}

impl Reaper {
    /// Blocks SIGCHLD in the calling thread (and so in every thread started
    /// after it: call this first) and starts the reaping thread, which
    /// takes SIGCHLD with `sigwait`. Children get an empty signal mask from
    /// `Command::spawn`.
    pub fn start() -> nix::Result<Arc<Reaper>> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        set.thread_block()?;
        let reaper = Arc::new(Reaper::default());
        let this = Arc::clone(&reaper);
        std::thread::spawn(move || loop {
            if set.wait().is_ok() {
                this.reap_all();
            }
        });
        Ok(reaper)
    }

    /// Calls `f` once `pid` has exited (at once if it already has).
    pub fn watch(&self, pid: i32, f: impl FnOnce(Exit) + Send + 'static) {
        let mut table = self.table.lock().unwrap();
        match table.remove(&pid) {
            Some(Entry::Exited(exit)) => {
                drop(table);
                f(exit);
            }
            _ => {
                table.insert(pid, Entry::Watched(Box::new(f)));
            }
        }
    }

    /// Blocks until `pid` exits.
    pub fn wait(&self, pid: i32) -> Exit {
        let (tx, rx) = mpsc::channel();
        self.watch(pid, move |exit| {
            let _ = tx.send(exit);
        });
        rx.recv()
            .expect("the reaper thread runs for the shim's life")
    }

    fn reap_all(&self) {
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code as u32),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as u32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue, // stopped or continued: not an exit
            };
            self.exited(pid.as_raw(), Exit::now(status));
        }
    }

    fn exited(&self, pid: i32, exit: Exit) {
        let mut table = self.table.lock().unwrap();
        match table.remove(&pid) {
            Some(Entry::Watched(f)) => {
                drop(table);
                f(exit);
            }
            _ => {
                table.retain(|_, e| match e {
                    Entry::Exited(old) => {
                        exit.at.duration_since(old.at).unwrap_or_default() < UNCLAIMED_FOR
                    }
                    Entry::Watched(_) => true,
                });
                table.insert(pid, Entry::Exited(exit));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_before_the_watch_is_kept_for_it() {
        let reaper = Reaper::default();
        reaper.exited(42, Exit::now(3));
        assert_eq!(reaper.wait(42).status, 3);
    }

    #[test]
    fn a_watch_before_the_exit_is_called_by_it() {
        let reaper = Arc::new(Reaper::default());
        let (tx, rx) = mpsc::channel();
        reaper.watch(7, move |e| tx.send(e.status).unwrap());
        reaper.exited(7, Exit::now(137));
        assert_eq!(rx.recv().unwrap(), 137);
    }
}
