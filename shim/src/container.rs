//! One container of this shim: its runtime, bundle, init and execs, and the
//! lifecycle steps that run the runtime and report exits in order.

use crate::bundle::{self, Bundle};
use crate::events::Events;
use crate::io::{self, Stdio3, StdioPaths};
use crate::process::{self, Lifecycle, Process};
use crate::reaper::{Exit, Reaper};
use crate::runtime_cli::{CreateOptions, ExecOptions, Runtime, RuntimeError};
use crate::tty::{Console, ConsoleSocket, TtyError};
use containerd_shim::protos::events::task::{TaskExecStarted, TaskExit, TaskStart};
use containerd_shim::protos::shim::oci::Options;
use containerd_shim::protos::topics;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Io(#[from] io::IoError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error("read pid file {0}: {1}")]
    PidFile(String, std::io::Error),
    #[error("write {0}: {1}")]
    Write(String, std::io::Error),
}

/// What the shim's threads share: the reaper and the event queue.
pub struct Shared {
    pub namespace: String,
    pub reaper: Arc<Reaper>,
    pub events: Events,
}

pub struct Container {
    pub id: String,
    pub bundle: Bundle,
    pub runtime: Runtime,
    pub init: Arc<Process>,
    pub execs: Mutex<HashMap<String, Arc<Process>>>,
    pub rootfs_mounted: bool,
    /// Who gets the process's stdio pipes (`IoUid`, `IoGid`).
    pub io_ids: Option<(u32, u32)>,
    /// Set once init has started.
    pub oom: std::sync::OnceLock<Arc<crate::oom::OomWatch>>,
    /// Whether init's exit must end the container's other processes: the
    /// kernel does that only in a pid namespace init owns.
    pub kill_all_on_exit: bool,
}

/// Whether the bundle's container has no pid namespace of its own (it has
/// the host's, or joins another by path), as containerd's runc shim reads
/// config.json.
pub fn shares_pid_namespace(bundle: &Bundle) -> bool {
    let namespaces = bundle.config()["linux"]["namespaces"].as_array().cloned();
    !namespaces
        .unwrap_or_default()
        .iter()
        .any(|ns| ns["type"] == "pid" && ns["path"].as_str().unwrap_or_default().is_empty())
}

impl Container {
    /// `RT create` for init, with its stdio; init stays parked until start.
    pub fn create(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        options: &Options,
    ) -> Result<u32, StartError> {
        let pid_file = self.bundle.init_pid_file();
        self.spawn(shared, &self.init, &pid_file, |console_socket, stdio| {
            let create = CreateOptions {
                bundle: self.bundle.dir(),
                pid_file: &pid_file,
                console_socket,
                no_pivot: options.no_pivot_root,
                no_new_keyring: options.no_new_keyring,
            };
            self.runtime.create(&self.id, &create, stdio)
        })
    }

    /// `RT start`: releases init; its exit is reported after the start event.
    pub fn start(self: &Arc<Self>, shared: &Arc<Shared>) -> Result<u32, RuntimeError> {
        self.init.lock().start_pending = true;
        let started = self.runtime.start(&self.id);
        let pid = self.init.pid();
        if started.is_ok() {
            self.set_running(&self.init);
            shared.events.publish(
                topics::TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: self.id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
        }
        self.init.lock().start_pending = false;
        self.report_exits(shared);
        started.map(|()| pid)
    }

    /// `RT exec --detach` for an exec added earlier.
    pub fn start_exec(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        exec: &Arc<Process>,
    ) -> Result<u32, StartError> {
        let (spec_file, pid_file) = self.bundle.exec_files(&exec.exec_id);
        let spec = std::mem::take(&mut exec.lock().spec);
        std::fs::write(&spec_file, spec)
            .map_err(|e| StartError::Write(path_str(&spec_file).to_owned(), e))?;
        exec.lock().start_pending = true;
        let spawned = self.spawn(shared, exec, &pid_file, |console_socket, stdio| {
            let options = ExecOptions {
                process: &spec_file,
                pid_file: &pid_file,
                console_socket,
            };
            self.runtime.exec(&self.id, &options, stdio)
        });
        let _ = std::fs::remove_file(&spec_file);
        if let Ok(pid) = spawned {
            self.set_running(exec);
            shared.events.publish(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted {
                    container_id: self.id.clone(),
                    exec_id: exec.exec_id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
        }
        exec.lock().start_pending = false;
        self.report_exits(shared);
        spawned
    }

    fn set_running(&self, p: &Process) {
        let mut state = p.lock();
        if state.status == Lifecycle::Created {
            state.status = Lifecycle::Running;
        }
    }

    /// Runs `runtime` (create or exec) with the process's stdio or a
    /// console socket for its terminal, reads its pid and starts watching
    /// for its exit.
    fn spawn(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        p: &Arc<Process>,
        pid_file: &Path,
        runtime: impl FnOnce(Option<&Path>, Stdio3) -> Result<(), RuntimeError>,
    ) -> Result<u32, StartError> {
        let console = p.stdio.terminal.then(ConsoleSocket::new).transpose()?;
        let paths = match console {
            Some(_) => StdioPaths::default(),
            None => p.stdio.clone(),
        };
        let owner = io::Owner {
            id: &self.id,
            namespace: &shared.namespace,
            io_ids: self.io_ids,
        };
        let (ends, held) = io::open(&paths, &owner)?;
        runtime(
            console.as_ref().map(|c| c.path.as_path()),
            ends.into_stdio(),
        )?;
        let pid = read_pid(pid_file)?;
        {
            let mut state = p.lock();
            state.pid = pid;
            state.held = held;
            if let Some(socket) = console {
                let master = socket.receive()?;
                let mut held = std::mem::take(&mut state.held);
                state.console = Some(Console::start(master, &p.stdio, &owner, &mut held)?);
                state.held = held;
            }
        }
        let (container, process, shared2) = (Arc::clone(self), Arc::clone(p), Arc::clone(shared));
        shared.reaper.watch(pid as i32, move |exit| {
            if process.exec_id.is_empty() && container.kill_all_on_exit {
                // The runtime is waited for through the reaper, whose
                // thread this is: kill from another one, before the exit
                // goes out (as the Go shim orders it).
                std::thread::spawn(move || {
                    let _ = container
                        .runtime
                        .kill(&container.id, libc::SIGKILL as u32, true);
                    container.exited(&shared2, &process, exit)
                });
            } else {
                container.exited(&shared2, &process, exit)
            }
        });
        Ok(pid)
    }

    fn exited(&self, shared: &Shared, p: &Process, exit: Exit) {
        let console = {
            let mut state = p.lock();
            state.exited = Some(exit);
            state.console.take()
        };
        // What the process wrote to its terminal reaches the client before
        // its exit is reported.
        if let Some(mut console) = console {
            console.drain();
        }
        // An OOM kill ends a process: its event goes before the exit.
        if let Some(oom) = self.oom.get() {
            oom.check();
        }
        self.report_exits(shared);
    }

    /// Reports every exit that may go out now: execs' first, init's only
    /// when no exec runs any more (they are killed once init is gone, as
    /// the kernel does with a private pid namespace).
    pub fn report_exits(&self, shared: &Shared) {
        let execs: Vec<Arc<Process>> = self.execs.lock().unwrap().values().cloned().collect();
        for exec in &execs {
            self.report_if_due(shared, exec);
        }
        if self.init.lock().exited.is_none() {
            return;
        }
        let running: Vec<u32> = execs
            .iter()
            .filter(|e| e.is_running())
            .map(|e| e.pid())
            .collect();
        if running.is_empty() {
            if let Some(exit) = self.report_if_due(shared, &self.init) {
                let _ = self.bundle.save_exit(&exit);
            }
            return;
        }
        for pid in running {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }

    fn report_if_due(&self, shared: &Shared, p: &Process) -> Option<Exit> {
        let mut state = p.lock();
        let exit = state
            .exited
            .filter(|_| state.reported.is_none() && !state.start_pending)?;
        shared.events.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            Box::new(TaskExit {
                container_id: self.id.clone(),
                id: if p.exec_id.is_empty() {
                    self.id.clone()
                } else {
                    p.exec_id.clone()
                },
                pid: state.pid,
                exit_status: exit.status,
                exited_at: Some(process::timestamp(&exit)).into(),
                ..Default::default()
            }),
        );
        p.report(&mut state, exit);
        Some(exit)
    }
}

fn read_pid(pid_file: &Path) -> Result<u32, StartError> {
    bundle::read_pid(pid_file).map_err(|e| StartError::PidFile(path_str(pid_file).to_owned(), e))
}

/// Paths the shim makes are UTF-8 (containerd's bundle and ids are).
pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
