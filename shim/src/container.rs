//! One container of this shim: its runtime, bundle, init and execs, and
//! the steps of its lifecycle, which are the only callers of the runtime.
//! Exits are reported in the order containerd expects ([`exits`]).

mod exits;
#[cfg(test)]
pub(crate) mod tests;

use crate::bundle::{self, Bundle};
use crate::events::Events;
use crate::io::{self, Stdio3, StdioPaths};
use crate::options::{self, CheckpointOptions, OptionsError};
use crate::process::{Process, ProcessError, Step};
use crate::reaper::{Exit, Reaper};
use crate::rootfs::{self, MountError};
use crate::runtime_cli::{
    CheckpointArgs, CreateOptions, ExecOptions, GlobalOptions, RestoreOptions, Runtime,
    RuntimeError,
};
use crate::tty::{Console, ConsoleSocket, TtyError};
use crate::{oom, stats};
use containerd_shim::api::{CreateTaskRequest, ExecProcessRequest};
use containerd_shim::protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskOOM,
    TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim::protos::shim::oci::Options;
use containerd_shim::protos::topics;
use protobuf::MessageDyn;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Why a process could not be started: every step of it, the runtime's
/// `create` or `exec` among them.
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

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("exec {exec_id} of {id}: not found")]
    ExecNotFound { id: String, exec_id: String },
    #[error("exec {0} already exists")]
    ExecExists(String),
    /// containerd's runc shim's words.
    #[error("exec {0}: process not created")]
    NotCreated(String),
    /// The process is known to have exited (the id is the container's).
    /// containerd 2.x passes the text on as it is; 1.x drops the repeated
    /// ": not found" it would add to a NotFound.
    #[error("process {0} already finished: not found")]
    Finished(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(transparent)]
    Signal(nix::Error),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    SaveRuntime(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// `shim delete`'s, which runs without a Task service.
    #[error("read the runtime file: {0}")]
    RuntimeFile(serde_json::Error),
    /// `shim delete`'s.
    #[error("start the reaper: {0}")]
    Reaper(nix::Error),
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
    runtime: Runtime,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    rootfs_mounted: bool,
    /// Who gets the process's stdio pipes (`IoUid`, `IoGid`).
    io_ids: Option<(u32, u32)>,
    /// Set once init has started.
    oom: OnceLock<Arc<oom::OomEvents>>,
    /// Whether init's exit must end the container's other processes: the
    /// kernel does that only in a pid namespace init owns.
    kill_all_on_exit: bool,
    /// A task created from a checkpoint: Start restores init from it, as
    /// containerd's runc shim does, instead of releasing a parked one.
    restore_from: Option<Checkpoint>,
    shared: Arc<Shared>,
}

/// Where a task's checkpoint images are, and how to restore them.
struct Checkpoint {
    image_path: std::path::PathBuf,
    /// The options' `CriuWorkPath`, else the image directory.
    work_path: std::path::PathBuf,
    no_pivot: bool,
}

/// Whether the bundle's container has no pid namespace of its own (it has
/// the host's, or joins another by path), as containerd's runc shim reads
/// config.json.
fn shares_pid_namespace(bundle: &Bundle) -> bool {
    let namespaces = bundle.config()["linux"]["namespaces"].as_array().cloned();
    !namespaces
        .unwrap_or_default()
        .iter()
        .any(|ns| ns["type"] == "pid" && ns["path"].as_str().unwrap_or_default().is_empty())
}

impl Container {
    /// Mounts the rootfs and runs `RT create` for init, with its stdio;
    /// init stays parked until start. The runtime's options are kept in
    /// the bundle for `shim delete`.
    pub fn create(
        shared: &Arc<Shared>,
        req: &CreateTaskRequest,
    ) -> Result<Arc<Container>, ContainerError> {
        let options = options::from_any(req.options.as_ref())?;
        let bundle = Bundle::new(&req.bundle);
        let globals = GlobalOptions::new(&options, &shared.namespace, bundle.runtime_log());
        let json = serde_json::to_vec(&globals).map_err(std::io::Error::from);
        json.and_then(|json| bundle.save_runtime(&json))
            .map_err(ContainerError::SaveRuntime)?;
        rootfs::mount_all(&req.rootfs, &bundle.rootfs())?;
        let stdio = StdioPaths::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let container = Arc::new(Container {
            id: req.id.clone(),
            kill_all_on_exit: shares_pid_namespace(&bundle),
            bundle,
            runtime: Runtime::new(globals, Arc::clone(&shared.reaper)),
            init: Arc::new(Process::new("", stdio)),
            execs: Mutex::new(HashMap::new()),
            rootfs_mounted: !req.rootfs.is_empty(),
            // Unset (0:0) is the shim's own, which new pipes already are:
            // a client's FIFOs are then left as they are.
            io_ids: Some((options.io_uid, options.io_gid)).filter(|ids| *ids != (0, 0)),
            oom: OnceLock::new(),
            restore_from: (!req.checkpoint.is_empty()).then(|| Checkpoint {
                image_path: req.checkpoint.clone().into(),
                work_path: match options.criu_work_path.as_str() {
                    "" => req.checkpoint.clone().into(),
                    work => work.into(),
                },
                no_pivot: options.no_pivot_root,
            }),
            shared: Arc::clone(shared),
        });
        let created = match container.restore_from {
            Some(_) => Ok(()),
            None => container.create_init(&options).map(drop),
        };
        if let Err(e) = created {
            container.unmount_rootfs();
            return Err(e.into());
        }
        container.publish_created(req);
        Ok(container)
    }

    fn create_init(self: &Arc<Self>, options: &Options) -> Result<u32, StartError> {
        let pid_file = self.bundle.init_pid_file();
        self.spawn(&self.init, &pid_file, |console_socket, stdio| {
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

    fn restore_init(self: &Arc<Self>, c: &Checkpoint) -> Result<u32, StartError> {
        let pid_file = self.bundle.init_pid_file();
        self.spawn(&self.init, &pid_file, |console_socket, stdio| {
            let restore = RestoreOptions {
                bundle: self.bundle.dir(),
                pid_file: &pid_file,
                image_path: &c.image_path,
                work_path: &c.work_path,
                console_socket,
                no_pivot: c.no_pivot,
            };
            self.runtime.restore(&self.id, &restore, stdio)
        })
    }

    /// `RT checkpoint` of init into `path` (or the options' image path);
    /// CRIU's work files go to a directory of the bundle unless the
    /// options name one, and its log stays in the bundle when it fails.
    pub fn checkpoint(
        &self,
        path: &str,
        options: &CheckpointOptions,
    ) -> Result<(), ContainerError> {
        if !self.init.is_running() || self.init.has_exited() {
            return Err(ContainerError::NotRunning(self.id.clone()));
        }
        let image = match path {
            "" => Path::new(&options.image_path),
            path => Path::new(path),
        };
        let work = match options.work_path.as_str() {
            "" => self.bundle.dir().join("criu-work"),
            work => work.into(),
        };
        let args = CheckpointArgs {
            image_path: image,
            work_path: &work,
            options,
        };
        let done = self.runtime.checkpoint(&self.id, &args);
        if done.is_err() {
            let _ = std::fs::copy(
                work.join("dump.log"),
                self.bundle.dir().join("criu-dump.log"),
            );
        }
        if options.work_path.is_empty() {
            let _ = std::fs::remove_dir_all(&work);
        }
        done?;
        self.publish(
            topics::TASK_CHECKPOINTED_EVENT_TOPIC,
            Box::new(TaskCheckpointed {
                container_id: self.id.clone(),
                checkpoint: path_str(image).to_owned(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    fn publish_created(&self, req: &CreateTaskRequest) {
        let io = TaskIO {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            ..Default::default()
        };
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: self.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(io).into(),
                checkpoint: req.checkpoint.clone(),
                pid: self.init.pid(),
                ..Default::default()
            }),
        );
    }

    /// Init when `exec_id` is empty, else that exec.
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>, ContainerError> {
        if exec_id.is_empty() {
            return Ok(Arc::clone(&self.init));
        }
        let exec = self.execs.lock().unwrap().get(exec_id).cloned();
        exec.ok_or_else(|| ContainerError::ExecNotFound {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
        })
    }

    /// Adds an exec, to be started later.
    pub fn add_exec(&self, req: &ExecProcessRequest) -> Result<(), ContainerError> {
        let mut execs = self.execs.lock().unwrap();
        if execs.contains_key(&req.exec_id) {
            return Err(ContainerError::ExecExists(req.exec_id.clone()));
        }
        let stdio = StdioPaths::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let exec = Arc::new(Process::new(&req.exec_id, stdio));
        exec.lock().spec = req.spec.value.clone();
        execs.insert(req.exec_id.clone(), exec);
        self.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: self.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    /// Starts init (`RT start`) or an exec (`RT exec`); returns its pid.
    pub fn start(self: &Arc<Self>, exec_id: &str) -> Result<u32, ContainerError> {
        if !exec_id.is_empty() {
            return self.start_exec(&self.process(exec_id)?);
        }
        self.start_init()
    }

    /// `RT start`: releases init, or `RT restore` brings it back from the
    /// task's checkpoint.
    fn start_init(self: &Arc<Self>) -> Result<u32, ContainerError> {
        let run = || {
            if let Some(checkpoint) = &self.restore_from {
                let pid = self.restore_init(checkpoint)?;
                self.watch_oom(pid);
                return Ok(pid);
            }
            // Before init runs (its cgroup is the one `RT create` put it
            // in): a kill at once is still counted, and its event goes out
            // before the exit, which containerd reads as "OOMKilled" only
            // in that order.
            self.watch_oom(self.init.pid());
            self.runtime.start(&self.id)?;
            Ok(self.init.pid())
        };
        self.start_process(&self.init, run, |pid| {
            let event = TaskStart {
                container_id: self.id.clone(),
                pid,
                ..Default::default()
            };
            (topics::TASK_START_EVENT_TOPIC, Box::new(event))
        })
    }

    /// `RT exec --detach` for an exec added earlier.
    fn start_exec(self: &Arc<Self>, exec: &Arc<Process>) -> Result<u32, ContainerError> {
        let run = || Ok(self.spawn_exec(exec)?);
        self.start_process(exec, run, |pid| {
            let event = TaskExecStarted {
                container_id: self.id.clone(),
                exec_id: exec.exec_id.clone(),
                pid,
                ..Default::default()
            };
            (topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event))
        })
    }

    /// Starts `p` with `run`, which returns its pid, and publishes the
    /// event `started` makes of it; an exit seen meanwhile is reported
    /// after that event.
    fn start_process(
        &self,
        p: &Process,
        run: impl FnOnce() -> Result<u32, ContainerError>,
        started: impl FnOnce(u32) -> (&'static str, Box<dyn MessageDyn>),
    ) -> Result<u32, ContainerError> {
        p.begin_start()?;
        let result = run().and_then(|pid| {
            let (topic, event) = started(pid);
            p.advance(Step::Start, || self.publish(topic, event))?;
            Ok(pid)
        });
        p.end_start();
        self.report_exits();
        result
    }

    fn spawn_exec(self: &Arc<Self>, exec: &Arc<Process>) -> Result<u32, StartError> {
        let (spec_file, pid_file) = self.bundle.exec_files(&exec.exec_id);
        let spec = std::mem::take(&mut exec.lock().spec);
        std::fs::write(&spec_file, spec)
            .map_err(|e| StartError::Write(path_str(&spec_file).to_owned(), e))?;
        let spawned = self.spawn(exec, &pid_file, |console_socket, stdio| {
            let options = ExecOptions {
                process: &spec_file,
                pid_file: &pid_file,
                console_socket,
            };
            self.runtime.exec(&self.id, &options, stdio)
        });
        let _ = std::fs::remove_file(&spec_file);
        spawned
    }

    /// Runs `runtime` (create or exec) with the process's stdio or a
    /// console socket for its terminal, reads its pid and starts watching
    /// for its exit.
    fn spawn(
        self: &Arc<Self>,
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
            namespace: &self.shared.namespace,
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
        self.watch_exit(p, pid);
        Ok(pid)
    }

    /// OOM events for the container; a container whose cgroup cannot be
    /// watched runs without them.
    fn watch_oom(&self, pid: u32) {
        match oom::watch(pid, self.oom_event()) {
            Ok(Some(watch)) => drop(self.oom.set(watch)),
            Ok(None) => {}
            Err(e) => log::warn!("{e}"),
        }
    }

    /// What publishes the container's OOM event.
    fn oom_event(&self) -> impl Fn() + Send + Sync + 'static {
        let (shared, container_id) = (Arc::clone(&self.shared), self.id.clone());
        move || {
            let event = TaskOOM {
                container_id: container_id.clone(),
                ..Default::default()
            };
            shared
                .events
                .publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(event));
        }
    }

    /// Signals init through the runtime (`all`: every process of the
    /// container), an exec directly.
    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), ContainerError> {
        let p = self.process(exec_id)?;
        if p.has_exited() {
            return Err(ContainerError::Finished(self.id.clone()));
        }
        if exec_id.is_empty() {
            return Ok(self.runtime.kill(&self.id, signal, all)?);
        }
        // An exec not started yet has no pid, and kill(0) would signal
        // the shim's own process group.
        let pid = match p.pid() {
            0 => return Err(ContainerError::NotCreated(exec_id.to_owned())),
            pid => pid,
        };
        // SAFETY: kill has no memory-safety preconditions.
        let r = unsafe { libc::kill(pid as i32, signal as i32) };
        nix::errno::Errno::result(r)
            .map(drop)
            .map_err(ContainerError::Signal)
    }

    /// Deletes init (`RT delete`, once it has exited or if it never
    /// started) or an exec that has exited or never started; returns its
    /// pid and exit.
    pub fn delete(&self, exec_id: &str) -> Result<(u32, Exit), ContainerError> {
        if exec_id.is_empty() {
            return self.delete_init();
        }
        let exec = self.process(exec_id)?;
        let exit = exec.delete()?;
        self.execs.lock().unwrap().remove(exec_id);
        Ok((exec.pid(), exit))
    }

    fn delete_init(&self) -> Result<(u32, Exit), ContainerError> {
        self.init.check(Step::Delete)?;
        // A runtime that no longer knows the container has nothing to delete.
        self.runtime
            .delete(&self.id)
            .or_else(|e| if e.is_gone() { Ok(()) } else { Err(e) })?;
        // The runtime holds nothing of it now: the `shim delete` containerd
        // runs after every shim disconnects, clean or not, need not ask the
        // runtime again (that call was a third of a `ctr run --rm`'s tail).
        self.bundle.forget_runtime();
        // A task deleted before it started was killed by `delete --force`
        // (one to be restored has no process yet).
        if self.init.pid() != 0 {
            self.init.wait();
        }
        let exit = self.init.delete()?;
        self.unmount_rootfs();
        let pid = self.init.pid();
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: self.id.clone(),
                id: self.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: Some(crate::process::timestamp(&exit)).into(),
                ..Default::default()
            }),
        );
        Ok((pid, exit))
    }

    fn unmount_rootfs(&self) {
        if self.rootfs_mounted {
            rootfs::unmount(&self.bundle.rootfs());
        }
    }

    /// Pauses (`paused`) or resumes init through the runtime: refused
    /// before the runtime is asked if init's state does not allow it, and
    /// after if init's exit was reported meanwhile (the task is stopped
    /// then, whatever the runtime did).
    pub fn set_paused(&self, paused: bool) -> Result<(), ContainerError> {
        let container_id = self.id.clone();
        let (step, topic, event): (_, _, Box<dyn MessageDyn>) = match paused {
            true => (
                Step::Pause,
                topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id,
                    ..Default::default()
                }),
            ),
            false => (
                Step::Resume,
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id,
                    ..Default::default()
                }),
            ),
        };
        self.init.check(step)?;
        match paused {
            true => self.runtime.pause(&self.id),
            false => self.runtime.resume(&self.id),
        }?;
        self.init.advance(step, || self.publish(topic, event))?;
        Ok(())
    }

    /// The container's processes: each pid, with its exec id if it is an
    /// exec's.
    pub fn pids(&self) -> Result<Vec<(u32, Option<String>)>, ContainerError> {
        let pids = self.runtime.ps(&self.id)?;
        let execs: HashMap<u32, String> = self
            .execs
            .lock()
            .unwrap()
            .values()
            .map(|e| (e.pid(), e.exec_id.clone()))
            .collect();
        Ok(pids
            .into_iter()
            .map(|pid| (pid, execs.get(&pid).cloned()))
            .collect())
    }

    /// `RT update` with runtime-spec resources (JSON).
    pub fn update(&self, resources: &[u8]) -> Result<(), ContainerError> {
        Ok(self.runtime.update(&self.id, resources)?)
    }

    /// The container's cgroup metrics, v1 or v2 as the host has them.
    pub fn stats(&self) -> Result<Box<dyn MessageDyn>, ContainerError> {
        let json = self.runtime.stats(&self.id)?;
        Ok(stats::metrics(&json, stats::unified_host()))
    }

    fn publish(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        self.shared.events.publish(topic, event);
    }
}

/// `shim delete`, once the serving shim is gone: force-deletes the
/// container in the runtime its options named, if it may still hold it.
pub fn delete_orphan(bundle: &Bundle, id: &str) -> Result<(), ContainerError> {
    let Some(json) = bundle.saved_runtime() else {
        return Ok(());
    };
    let options: GlobalOptions =
        serde_json::from_slice(&json).map_err(ContainerError::RuntimeFile)?;
    let reaper = Reaper::start().map_err(ContainerError::Reaper)?;
    // Gone already is what delete is for.
    let _ = Runtime::new(options, reaper).delete(id);
    Ok(())
}

fn read_pid(pid_file: &Path) -> Result<u32, StartError> {
    bundle::read_pid(pid_file).map_err(|e| StartError::PidFile(path_str(pid_file).to_owned(), e))
}

/// Paths the shim makes are UTF-8 (containerd's bundle and ids are).
pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
