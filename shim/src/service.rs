//! The Task service containerd calls: each method finds the container,
//! calls it, and answers in containerd's terms. Errors become ttrpc codes
//! in one place, [`code`]: NotFound for what is gone, FailedPrecondition
//! for a step the task's state refuses.

use crate::container::{path_str, Container, ContainerError, Shared};
use crate::options;
use crate::process::{self, ProcessError};
use containerd_shim::api::{self, Empty};
use containerd_shim::protos::shim::oci::ProcessDetails;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::util::convert_to_any;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use ttrpc::{get_status, Code};

/// What a Task method fails with.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error("container {0}: not found")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Encode(containerd_shim::Error),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// The ttrpc code containerd acts on for `e`.
fn code(e: &TaskError) -> Code {
    use ContainerError as C;
    match e {
        TaskError::NotFound(_) => Code::NOT_FOUND,
        TaskError::Exists(_) => Code::ALREADY_EXISTS,
        TaskError::Encode(_) => Code::UNKNOWN,
        TaskError::Container(e) => match e {
            C::ExecNotFound { .. } | C::Finished(_) | C::Signal(_) => Code::NOT_FOUND,
            C::ExecExists(_) => Code::ALREADY_EXISTS,
            C::NotCreated(_)
            | C::NotRunning(_)
            | C::Process(ProcessError::Refused { .. } | ProcessError::NoTerminal) => {
                Code::FAILED_PRECONDITION
            }
            C::Options(_) => Code::INVALID_ARGUMENT,
            // The runtime says the process is gone.
            C::Runtime(e) if e.is_gone() => Code::NOT_FOUND,
            C::Runtime(_)
            | C::Start(_)
            | C::Mount(_)
            | C::SaveRuntime(_)
            | C::Process(ProcessError::Resize(_))
            | C::RuntimeFile(_)
            | C::Reaper(_) => Code::UNKNOWN,
        },
    }
}

impl From<TaskError> for ttrpc::Error {
    fn from(e: TaskError) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(get_status(code(&e), e))
    }
}

impl From<ContainerError> for ttrpc::Error {
    fn from(e: ContainerError) -> ttrpc::Error {
        TaskError::from(e).into()
    }
}

pub struct Service {
    shared: Arc<Shared>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    exit: Arc<ExitSignal>,
}

impl Service {
    pub fn new(shared: Arc<Shared>, exit: Arc<ExitSignal>) -> Service {
        Service {
            shared,
            containers: Mutex::new(HashMap::new()),
            exit,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>, TaskError> {
        let containers = self.containers.lock().unwrap();
        let c = containers.get(id).cloned();
        c.ok_or_else(|| TaskError::NotFound(id.to_owned()))
    }

    /// Lets the shim exit if no task is left; whether it did. A group's
    /// shim serves its other containers until they are gone: containerd
    /// 2.2 sends Shutdown after each of a pod's tasks is deleted, and again
    /// for the pod, and each may come while others still run.
    fn exit_if_idle(&self) -> bool {
        let idle = self.containers.lock().unwrap().is_empty();
        if idle {
            self.exit.signal();
        }
        idle
    }

    fn process(
        &self,
        id: &str,
        exec_id: &str,
    ) -> TtrpcResult<(Arc<Container>, Arc<process::Process>)> {
        let c = self.container(id)?;
        let p = c.process(exec_id)?;
        Ok((c, p))
    }
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(TaskError::Exists(req.id).into());
        }
        let c = Container::create(&self.shared, &req)?;
        let pid = c.init.pid();
        self.containers.lock().unwrap().insert(req.id, c);
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
        let pid = self.container(&req.id)?.start(&req.exec_id)?;
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
        let reported = state.reported();
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: path_str(c.bundle.dir()).to_owned(),
            pid: state.pid,
            status: state.status().to_proto().into(),
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
        let c = self.container(&req.id)?;
        c.kill(&req.exec_id, req.signal, req.all)?;
        Ok(Empty::new())
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let c = self.container(&req.id)?;
        let (pid, exit) = c.delete(&req.exec_id)?;
        if req.exec_id.is_empty() {
            self.containers.lock().unwrap().remove(&req.id);
        }
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: Some(process::timestamp(&exit)).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = self.container(&req.id)?.pids()?;
        let processes = pids
            .into_iter()
            .map(|(pid, exec_id)| ProcessInfo {
                pid,
                info: exec_id
                    .and_then(|exec_id| {
                        let details = ProcessDetails {
                            exec_id,
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
        self.container(&req.id)?.set_paused(true)?;
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        self.container(&req.id)?.set_paused(false)?;
        Ok(Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        let options =
            options::checkpoint_from_any(req.options.as_ref()).map_err(ContainerError::from)?;
        self.container(&req.id)?.checkpoint(&req.path, &options)?;
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        self.container(&req.id)?.add_exec(&req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        p.resize(req.width, req.height)
            .map_err(ContainerError::from)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            p.close_stdin();
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        self.container(&req.id)?.update(&req.resources.value)?;
        Ok(Empty::new())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let metrics = self.container(&req.id)?.stats()?;
        let stats = convert_to_any(metrics).map_err(TaskError::Encode)?;
        Ok(api::StatsResponse {
            stats: Some(stats).into(),
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
        self.exit_if_idle();
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::tests::{bundle_dir, container};

    #[test]
    fn shutdown_waits_for_the_last_task() {
        let dir = bundle_dir("shutdown");
        let (c, _events) = container(&dir);
        let exit = Arc::new(ExitSignal::default());
        let shared = Arc::new(Shared {
            namespace: "test".into(),
            reaper: Arc::new(crate::reaper::Reaper::default()),
            events: crate::events::Events::capture().0,
        });
        let service = Service::new(shared, Arc::clone(&exit));
        service.containers.lock().unwrap().insert(c.id.clone(), c);
        // Sent again and again while a task remains: a no-op each time.
        for _ in 0..3 {
            assert!(!service.exit_if_idle());
        }
        service.containers.lock().unwrap().clear();
        assert!(service.exit_if_idle());
        exit.wait(); // signalled: returns at once
        assert!(service.exit_if_idle(), "a late Shutdown still answers");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
