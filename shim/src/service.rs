//! The Task service containerd calls: each method checks the request
//! against the shim's state, runs the runtime through [`Container`] and
//! answers in containerd's terms (NotFound for a finished process,
//! FailedPrecondition for deleting a running one, Unimplemented for what
//! berth does not do).

use crate::bundle::Bundle;
use crate::container::{path_str, Container, Shared};
use crate::io::StdioPaths;
use crate::process::{self, Lifecycle, Process};
use crate::rootfs;
use crate::runtime_cli::{GlobalOptions, Runtime, RuntimeError};
use crate::stats;
use containerd_shim::api::{self, Empty};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskOOM, TaskPaused, TaskResumed,
};
use containerd_shim::protos::shim::oci::{Options, ProcessDetails};
use containerd_shim::protos::topics;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::util::convert_to_any;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use protobuf::well_known_types::any::Any;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use ttrpc::{get_status, Code, Error};

pub struct Service {
    shared: Arc<Shared>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    exit: Arc<ExitSignal>,
}

fn status(code: Code, msg: impl Display) -> Error {
    Error::RpcStatus(get_status(code, msg))
}

fn not_found(what: impl Display) -> Error {
    status(Code::NOT_FOUND, format!("{what}: not found"))
}

fn unknown(e: impl Display) -> Error {
    status(Code::UNKNOWN, e)
}

/// A runtime error, as NotFound when the runtime says the process is gone.
fn runtime_error(e: RuntimeError) -> Error {
    match e.is_gone() {
        true => status(Code::NOT_FOUND, e),
        false => unknown(e),
    }
}

impl Service {
    pub fn new(shared: Arc<Shared>, exit: Arc<ExitSignal>) -> Service {
        Service {
            shared,
            containers: Mutex::new(HashMap::new()),
            exit,
        }
    }

    fn container(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        let containers = self.containers.lock().unwrap();
        containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("container {id}")))
    }

    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        if exec_id.is_empty() {
            let init = Arc::clone(&c.init);
            return Ok((c, init));
        }
        let exec = c.execs.lock().unwrap().get(exec_id).cloned();
        let exec = exec.ok_or_else(|| not_found(format!("exec {exec_id} of {id}")))?;
        Ok((c, exec))
    }

    /// The runtime the options name, persisted for `shim delete`.
    fn runtime_for(
        &self,
        bundle: &Bundle,
        options: Option<&Any>,
    ) -> TtrpcResult<(Runtime, Options)> {
        let opts =
            crate::options::from_any(options).map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        let globals = GlobalOptions::new(&opts, &self.shared.namespace, bundle.runtime_log());
        let json = serde_json::to_vec(&globals).map_err(unknown)?;
        bundle.save_runtime(&json).map_err(unknown)?;
        let rt = Runtime::new(globals, Arc::clone(&self.shared.reaper));
        Ok((rt, opts))
    }

    fn create_container(&self, req: &api::CreateTaskRequest) -> TtrpcResult<Arc<Container>> {
        let bundle = Bundle::new(&req.bundle);
        let (runtime, opts) = self.runtime_for(&bundle, req.options.as_ref())?;
        let rootfs = bundle.rootfs();
        rootfs::mount_all(&req.rootfs, &rootfs).map_err(unknown)?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let container = Arc::new(Container {
            id: req.id.clone(),
            kill_all_on_exit: crate::container::shares_pid_namespace(&bundle),
            bundle,
            runtime,
            init: Arc::new(Process::new("", stdio)),
            execs: Mutex::new(HashMap::new()),
            rootfs_mounted: !req.rootfs.is_empty(),
            // Unset (0:0) is the shim's own, which new pipes already are:
            // a client's FIFOs are then left as they are.
            io_ids: Some((opts.io_uid, opts.io_gid)).filter(|ids| *ids != (0, 0)),
            oom: std::sync::OnceLock::new(),
        });
        if let Err(e) = container.create(&self.shared, &opts) {
            if container.rootfs_mounted {
                rootfs::unmount(&rootfs);
            }
            return Err(unknown(e));
        }
        Ok(container)
    }

    fn delete_init(&self, c: &Arc<Container>) -> TtrpcResult<crate::reaper::Exit> {
        if c.init.is_running() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("cannot delete running task {}", c.id),
            ));
        }
        if let Err(e) = c.runtime.delete(&c.id).filter_gone() {
            return Err(unknown(e));
        }
        // The runtime holds nothing of it now: the `shim delete` containerd
        // runs after every shim disconnects, clean or not, need not ask the
        // runtime again (that call was a third of a `ctr run --rm`'s tail).
        c.bundle.forget_runtime();
        // A task deleted before it started was killed by `delete --force`.
        let exit = c.init.wait();
        if c.rootfs_mounted {
            rootfs::unmount(&c.bundle.rootfs());
        }
        self.containers.lock().unwrap().remove(&c.id);
        self.shared.events.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: c.id.clone(),
                id: c.id.clone(),
                pid: c.init.pid(),
                exit_status: exit.status,
                exited_at: Some(process::timestamp(&exit)).into(),
                ..Default::default()
            }),
        );
        Ok(exit)
    }

    /// OOM events for the container; a container whose cgroup cannot be
    /// watched runs without them.
    fn watch_oom(&self, c: &Container, pid: u32) {
        let (shared, container_id) = (Arc::clone(&self.shared), c.id.clone());
        let watched = crate::oom::watch(pid, move || {
            let event = TaskOOM {
                container_id: container_id.clone(),
                ..Default::default()
            };
            shared
                .events
                .publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(event));
        });
        match watched {
            Ok(Some(watch)) => drop(c.oom.set(watch)),
            Ok(None) => {}
            Err(e) => log::warn!("{e}"),
        }
    }

    fn pause_or_resume(&self, id: &str, pause: bool) -> TtrpcResult<Empty> {
        let c = self.container(id)?;
        match pause {
            true => c.runtime.pause(id),
            false => c.runtime.resume(id),
        }
        .map_err(runtime_error)?;
        c.init.lock().status = if pause {
            Lifecycle::Paused
        } else {
            Lifecycle::Running
        };
        let container_id = id.to_owned();
        match pause {
            true => self.shared.events.publish(
                topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id,
                    ..Default::default()
                }),
            ),
            false => self.shared.events.publish(
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id,
                    ..Default::default()
                }),
            ),
        }
        Ok(Empty::new())
    }
}

trait FilterGone {
    fn filter_gone(self) -> Result<(), RuntimeError>;
}

impl FilterGone for Result<(), RuntimeError> {
    /// A runtime that no longer knows the container has nothing to delete.
    fn filter_gone(self) -> Result<(), RuntimeError> {
        self.or_else(|e| if e.is_gone() { Ok(()) } else { Err(e) })
    }
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let c = self.create_container(&req)?;
        let pid = c.init.pid();
        self.containers.lock().unwrap().insert(req.id.clone(), c);
        self.shared.events.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIO {
                    stdin: req.stdin,
                    stdout: req.stdout,
                    stderr: req.stderr,
                    terminal: req.terminal,
                    ..Default::default()
                })
                .into(),
                checkpoint: req.checkpoint,
                pid,
                ..Default::default()
            }),
        );
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if p.lock().status != Lifecycle::Created {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("{} already started", req.id),
            ));
        }
        let pid = match req.exec_id.is_empty() {
            true => {
                let pid = c.start(&self.shared).map_err(runtime_error)?;
                // After start, as containerd's runc shim does: the cgroup
                // is final by then.
                self.watch_oom(&c, pid);
                pid
            }
            false => c.start_exec(&self.shared, &p).map_err(unknown)?,
        };
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let state = p.lock();
        let reported = state.reported;
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: path_str(c.bundle.dir()).to_owned(),
            pid: state.pid,
            status: state.status.to_proto().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: reported.map_or(0, |e| e.status),
            exited_at: reported.map(|e| process::timestamp(&e)).into(),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let exit = p.wait();
        Ok(api::WaitResponse {
            exit_status: exit.status,
            exited_at: Some(process::timestamp(&exit)).into(),
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let (pid, exited) = {
            let state = p.lock();
            (state.pid, state.exited.is_some())
        };
        if exited {
            return Err(status(
                Code::NOT_FOUND,
                format!("process {} already finished", req.id),
            ));
        }
        if !req.exec_id.is_empty() {
            // SAFETY: kill has no memory-safety preconditions.
            let r = unsafe { libc::kill(pid as i32, req.signal as i32) };
            return nix::errno::Errno::result(r)
                .map(|_| Empty::new())
                .map_err(|e| status(Code::NOT_FOUND, e));
        }
        c.runtime
            .kill(&req.id, req.signal, req.all)
            .map_err(runtime_error)?;
        Ok(Empty::new())
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let exit = match req.exec_id.is_empty() {
            true => self.delete_init(&c)?,
            false => {
                let Some(exit) = p.lock().reported.or_else(|| {
                    // An exec that never started has nothing to wait for.
                    (p.pid() == 0).then(|| crate::reaper::Exit {
                        status: 0,
                        at: std::time::SystemTime::now(),
                    })
                }) else {
                    return Err(status(
                        Code::FAILED_PRECONDITION,
                        format!("cannot delete running exec {}", req.exec_id),
                    ));
                };
                c.execs.lock().unwrap().remove(&req.exec_id);
                exit
            }
        };
        Ok(api::DeleteResponse {
            pid: p.pid(),
            exit_status: exit.status,
            exited_at: Some(process::timestamp(&exit)).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let c = self.container(&req.id)?;
        let pids = c.runtime.ps(&req.id).map_err(runtime_error)?;
        let execs: HashMap<u32, String> = c
            .execs
            .lock()
            .unwrap()
            .values()
            .map(|e| (e.pid(), e.exec_id.clone()))
            .collect();
        let processes = pids
            .into_iter()
            .map(|pid| ProcessInfo {
                pid,
                info: execs
                    .get(&pid)
                    .and_then(|exec_id| {
                        let details = ProcessDetails {
                            exec_id: exec_id.clone(),
                            ..Default::default()
                        };
                        convert_to_any(Box::new(details)).ok()
                    })
                    .into(),
                ..Default::default()
            })
            .collect();
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        self.pause_or_resume(&req.id, true)
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        self.pause_or_resume(&req.id, false)
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(status(Code::UNIMPLEMENTED, "berth does not checkpoint"))
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        let mut execs = c.execs.lock().unwrap();
        if execs.contains_key(&req.exec_id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let exec = Arc::new(Process::new(&req.exec_id, stdio));
        exec.lock().spec = req.spec.value.clone();
        execs.insert(req.exec_id.clone(), exec);
        self.shared.events.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id,
                exec_id: req.exec_id,
                ..Default::default()
            }),
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let state = p.lock();
        let console = state
            .console
            .as_ref()
            .ok_or_else(|| status(Code::FAILED_PRECONDITION, "no terminal"))?;
        console.resize(req.width, req.height).map_err(unknown)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            p.lock().held.close_stdin();
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.runtime
            .update(&req.id, &req.resources.value)
            .map_err(runtime_error)?;
        Ok(Empty::new())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let c = self.container(&req.id)?;
        let json = c.runtime.stats(&req.id).map_err(runtime_error)?;
        let metrics = stats::metrics(&json, stats::unified_host());
        Ok(api::StatsResponse {
            stats: Some(convert_to_any(metrics).map_err(unknown)?).into(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let c = self.container(&req.id)?;
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: c.init.pid(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<Empty> {
        // A shim of a group serves its other containers until they are gone.
        if self.containers.lock().unwrap().is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }
}
