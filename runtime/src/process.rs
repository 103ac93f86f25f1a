//! Starting a container process: the `berth` side of the fork.
//!
//! berth forks a first stage that joins and creates namespaces (a new
//! user namespace first, mapped by berth from outside), then forks the
//! real process so it is pid 1 of a new pid namespace. berth is a child
//! subreaper meanwhile, so that process becomes its child once the first
//! stage exits; when berth exits, it passes to berth's own subreaper (the
//! shim), which is the process model callers expect.

use crate::error::{Context, OsError};
use crate::namespaces;
use crate::state::HookState;
use crate::sync::{Channel, Msg};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use std::os::fd::OwnedFd;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("{0}")]
    Init(String),
    #[error(transparent)]
    Os(#[from] OsError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    NetDev(#[from] crate::netdev::NetDevError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

fn unexpected(what: &str) -> ProcessError {
    ProcessError::Init(format!("unexpected request from the container: {what}"))
}

/// What the container side may ask of berth while it is being set up.
/// Each request has a pid: the first stage's for the first two, the
/// container process's for the hooks.
pub trait Parent {
    /// Write uid_map and gid_map of a process in a new user namespace.
    fn map_ids(&mut self, _pid: i32) -> Result<(), ProcessError> {
        Err(unexpected("map ids"))
    }
    /// Write the clock offsets of a process's new time namespace.
    fn set_clocks(&mut self, _pid: i32) -> Result<(), ProcessError> {
        Err(unexpected("set clocks"))
    }
    /// Record a process just forked (the first stage, then the
    /// container's), so that it can be found if berth dies now.
    fn forked(&mut self, _pid: i32) -> Result<(), ProcessError> {
        Ok(())
    }
    /// Put the first stage into the container's cgroup (systemd scope).
    fn join_cgroup(&mut self, _pid: i32) -> Result<(), ProcessError> {
        Err(unexpected("join cgroup"))
    }
    /// Place the container's process, just forked and not yet running,
    /// where the first stage could not put it before the fork.
    fn place(&mut self, _pid: i32) -> Result<(), ProcessError> {
        Ok(())
    }
    /// Undo what was done outside the container for a process that
    /// failed to start, before it is killed.
    fn abandon(&mut self) {}
    /// Run prestart and createRuntime hooks; return the state the
    /// container-side hooks get.
    fn runtime_hooks(&mut self, _pid: i32) -> Result<HookState, ProcessError> {
        Err(unexpected("run hooks"))
    }
    /// Hand process `pid`'s seccomp notification fd to the agent.
    fn seccomp_listener(&mut self, _pid: i32, _fd: OwnedFd) -> Result<(), ProcessError> {
        Err(unexpected("seccomp listener"))
    }
}

/// Forks `stage1` (which forks the real process and reports its pid) and
/// serves its requests until the process is ready (parked, or about to
/// exec) or has failed. On failure, whatever was forked is killed and
/// reaped before this returns. On success the channel comes back with the
/// pid: a parked init dies with berth until it gets [`Msg::Handover`].
pub fn spawn(
    stage1: impl FnOnce(Channel),
    parent: &mut dyn Parent,
) -> Result<(i32, Channel), ProcessError> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer.
    nix::errno::Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) })
        .context("become a child subreaper")?;
    let (ours, theirs) = Channel::pair().context("socketpair")?;
    let berth = nix::unistd::getpid();
    // SAFETY: berth is single-threaded here, so the child may allocate and
    // run ordinary Rust code until it execs.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(ours);
            die_with(berth);
            stage1(theirs);
            // SAFETY: _exit is always safe; stage1 ends in _exit or exec,
            // this only guards against it ever returning.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            debug(&format!("first stage {child} forked"));
            let mut pid = None;
            let r = parent
                .forked(child.as_raw())
                .and_then(|()| drive(&ours, child, &mut pid, parent));
            if r.is_err() {
                parent.abandon();
                reap_after_failure(child, pid);
            }
            r.map(|pid| (pid, ours))
        }
    }
}

/// The first stage is killed if berth dies (or has died already): it
/// would notice only at its next request, maybe after a slow mount.
fn die_with(berth: Pid) {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a plain signal number.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != berth {
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(1) }
    }
}

fn drive(
    ch: &Channel,
    stage1: Pid,
    pid: &mut Option<i32>,
    parent: &mut dyn Parent,
) -> Result<i32, ProcessError> {
    let known =
        |pid: &Option<i32>| pid.ok_or_else(|| ProcessError::Init("container pid unknown".into()));
    // An exec'd process races the first stage: its listener and its
    // Ready may come before the first stage has reported its pid. Both
    // wait here until then.
    let (mut listener, mut ready) = (None, false);
    loop {
        match ch.recv_fd()? {
            (Msg::MapIds { pid }, _) => {
                debug(&format!("writing the id maps of {pid}'s user namespace"));
                parent.map_ids(pid)?;
                ch.send(&Msg::IdsMapped)?;
            }
            (Msg::SetClocks { pid }, _) => {
                debug(&format!("setting the clocks of {pid}'s time namespace"));
                parent.set_clocks(pid)?;
                ch.send(&Msg::ClocksSet)?;
            }
            (Msg::JoinCgroup { pid }, _) => {
                debug(&format!("putting {pid} into its systemd scope"));
                parent.join_cgroup(pid)?;
                ch.send(&Msg::CgroupJoined)?;
            }
            (Msg::InitPid { pid: p }, _) => {
                debug(&format!(
                    "the namespaces are made; the container's process is {p}"
                ));
                *pid = Some(p);
                // The first stage exits once answered; the process waits
                // for that. Either way the first stage is reaped here.
                let placed = parent
                    .forked(p)
                    .and_then(|()| parent.place(p))
                    .and_then(|()| Ok(ch.send(&Msg::CgroupJoined)?));
                if placed.is_err() {
                    let _ = kill(stage1, Signal::SIGKILL);
                }
                let _ = waitpid(stage1, None);
                placed?;
            }
            (Msg::RunHooks, _) => {
                debug("the rootfs is mounted; running prestart and createRuntime hooks");
                let state = parent.runtime_hooks(known(pid)?)?;
                ch.send(&Msg::HooksDone { state })?;
            }
            (Msg::SeccompListener, Some(fd)) => listener = Some(fd),
            (Msg::Ready, _) => {
                debug("the process is set up (user, capabilities, cwd, program)");
                ready = true;
            }
            (Msg::Log { level, msg }, _) => crate::logging::log(level, &msg),
            (Msg::Error { msg }, _) => return Err(ProcessError::Init(msg)),
            (other, _) => return Err(unexpected(&format!("{other:?}"))),
        }
        if let Some(p) = *pid {
            if let Some(fd) = listener.take() {
                debug(&format!("handing {p}'s seccomp notifications to the agent"));
                parent.seccomp_listener(p, fd)?;
            }
            if ready {
                return Ok(p);
            }
        }
    }
}

fn debug(what: &str) {
    crate::logging::debug(&format!("spawn: {what}"));
}

/// Kills and reaps whichever stage is still ours: the container process
/// once its pid is known (the first stage is already reaped then), else
/// the first stage.
fn reap_after_failure(stage1: Pid, pid: Option<i32>) {
    kill_and_reap(pid.map_or(stage1, Pid::from_raw));
}

/// SIGKILLs child `pid` and waits for it.
pub(crate) fn kill_and_reap(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
}
