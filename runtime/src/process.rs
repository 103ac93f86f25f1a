//! Starting a container's init: the `berth` side of the fork.
//!
//! berth forks a first stage that joins and creates namespaces (a new
//! user namespace first, mapped by berth from outside), then forks the
//! container's init so it is pid 1 of a new pid namespace. berth is a
//! child subreaper meanwhile, so init becomes its child once the first
//! stage exits; when berth exits, init passes to berth's own subreaper
//! (the shim), which is the process model callers expect.

use crate::init::{self, InitConfig};
use crate::namespaces::{self, Plan};
use crate::sync::{Channel, Msg};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::LinuxIdMapping;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("{0}")]
    Init(String),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ProcessError {
    move |source| ProcessError::Sys { what, source }
}

/// Forks the container's init and drives it until it is parked, waiting
/// for `start`. `runtime_hooks` runs prestart and createRuntime hooks (in
/// berth's namespaces) once the container's namespaces exist; it gets
/// init's pid and returns the state JSON the container-side hooks get.
/// On any failure init is killed and reaped before this returns.
pub fn launch(
    cfg: &InitConfig,
    plan: &Plan,
    runtime_hooks: &mut dyn FnMut(i32) -> Result<String, ProcessError>,
) -> Result<i32, ProcessError> {
    let maps = (&cfg.uid_mappings[..], &cfg.gid_mappings[..]);
    spawn(|ch| init::stage1(cfg, plan, ch), maps, runtime_hooks)
}

/// Forks `stage1` (which forks the real process and reports its pid) and
/// serves its requests until the process is ready or has failed.
pub fn spawn(
    stage1: impl FnOnce(Channel),
    maps: (&[LinuxIdMapping], &[LinuxIdMapping]),
    runtime_hooks: &mut dyn FnMut(i32) -> Result<String, ProcessError>,
) -> Result<i32, ProcessError> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer.
    nix::errno::Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) })
        .map_err(sys("become a child subreaper"))?;
    let (ours, theirs) = Channel::pair().map_err(sys("socketpair"))?;
    // SAFETY: berth is single-threaded here, so the child may allocate and
    // run ordinary Rust code until it execs.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ours);
            stage1(theirs);
            // SAFETY: _exit is always safe; stage1 ends in _exit or exec,
            // this only guards against it ever returning.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let mut init_pid = None;
            let r = drive(maps, &ours, child, &mut init_pid, runtime_hooks);
            if r.is_err() {
                reap_after_failure(child, init_pid);
            }
            r
        }
    }
}

fn drive(
    maps: (&[LinuxIdMapping], &[LinuxIdMapping]),
    ch: &Channel,
    stage1: Pid,
    init_pid: &mut Option<i32>,
    runtime_hooks: &mut dyn FnMut(i32) -> Result<String, ProcessError>,
) -> Result<i32, ProcessError> {
    loop {
        match ch.recv()? {
            Msg::MapIds { pid } => {
                namespaces::write_id_maps(pid, maps.0, maps.1)?;
                ch.send(&Msg::IdsMapped)?;
            }
            Msg::InitPid { pid } => {
                *init_pid = Some(pid);
                let _ = waitpid(stage1, None);
            }
            Msg::RunHooks => {
                let pid = init_pid.ok_or_else(|| ProcessError::Init("init pid unknown".into()))?;
                let state = runtime_hooks(pid)?;
                ch.send(&Msg::HooksDone { state })?;
            }
            Msg::Ready => {
                return init_pid.ok_or_else(|| ProcessError::Init("init pid unknown".into()))
            }
            Msg::Error { msg } => return Err(ProcessError::Init(msg)),
            other => return Err(ProcessError::Init(format!("unexpected message {other:?}"))),
        }
    }
}

/// Kills and reaps whichever stage is still ours: init once its pid is
/// known (the first stage is already reaped then), else the first stage.
fn reap_after_failure(stage1: Pid, init_pid: Option<i32>) {
    let pid = init_pid.map_or(stage1, Pid::from_raw);
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
}
