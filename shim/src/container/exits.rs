//! The order in which a container's exits reach containerd: an exit is
//! known when the reaper sees it, but reported (the exit event, Wait,
//! State) only once its start event is out, and init's only after every
//! exec's, as the Go shim orders them.

use super::Container;
use crate::process::{self, Process};
use crate::reaper::Exit;
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::topics;
use std::sync::Arc;

impl Container {
    /// Has the reaper tell `p`'s exit at `pid` to [`Container::exited`].
    pub(super) fn watch_exit(self: &Arc<Self>, p: &Arc<Process>, pid: u32) {
        let (container, process) = (Arc::clone(self), Arc::clone(p));
        self.shared.reaper.watch(pid as i32, move |exit| {
            if process.exec_id.is_empty() && container.kill_all_on_exit {
                // The runtime is waited for through the reaper, whose
                // thread this is: kill from another one, before the exit
                // goes out (as the Go shim orders it).
                std::thread::spawn(move || {
                    let _ = container
                        .runtime
                        .kill(&container.id, libc::SIGKILL as u32, true);
                    container.exited(&process, exit)
                });
            } else {
                container.exited(&process, exit)
            }
        });
    }

    pub(super) fn exited(&self, p: &Process, exit: Exit) {
        let console = p.exited(exit);
        // What the process wrote to its terminal reaches the client before
        // its exit is reported.
        if let Some(mut console) = console {
            console.drain();
        }
        // An OOM kill ends a process: its event goes before the exit.
        if let Some(oom) = self.oom.get() {
            oom.check();
        }
        self.report_exits();
    }

    /// Reports every exit that may go out now: execs' first, init's only
    /// when no exec runs any more (they are killed once init is gone, as
    /// the kernel does with a private pid namespace).
    pub(super) fn report_exits(&self) {
        let execs: Vec<Arc<Process>> = self.execs.lock().unwrap().values().cloned().collect();
        for exec in &execs {
            self.report_if_due(exec);
        }
        if !self.init.has_exited() {
            return;
        }
        let running: Vec<u32> = execs
            .iter()
            .filter(|e| e.is_running())
            .map(|e| e.pid())
            .collect();
        if running.is_empty() {
            if let Some(exit) = self.report_if_due(&self.init) {
                let _ = self.bundle.save_exit(&exit);
            }
            return;
        }
        for pid in running {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }

    fn report_if_due(&self, p: &Process) -> Option<Exit> {
        p.report_if_due(|pid, exit| {
            let id = match p.exec_id.as_str() {
                "" => &self.id,
                exec_id => exec_id,
            };
            let event = TaskExit {
                container_id: self.id.clone(),
                id: id.to_owned(),
                pid,
                exit_status: exit.status,
                exited_at: Some(process::timestamp(exit)).into(),
                ..Default::default()
            };
            self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event));
        })
    }
}
