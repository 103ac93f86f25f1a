//! The lifecycle verbs: create, start, state, kill, delete, list.
//!
//! Each verb locks the container's state directory, works out the real
//! status (the recorded phase, corrected by whether init still lives) and
//! acts on it. Errors use the words containerd and Docker match on:
//! "does not exist" and "container not running".

use crate::cgroups::{self, systemd::Manager, Cgroup};
use crate::error::{Context, OsError};
use crate::hooks::{self, HookKind};
use crate::state::{self, Phase, State, StateDir};
pub use crate::state::{HookState, Status};
use crate::tty;

mod checkpoint;
mod create;
mod locked;
use crate::{logging, Result};
pub use checkpoint::{
    checkpoint, criu_action, restore, CheckpointError, CheckpointOpts, CriuOpts, RestoreOpts,
};
pub(crate) use create::write_pid_file;
pub use create::{create, CreateOpts};
pub use locked::{Locked, Verb};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container \"{id}\" is {status}: {what}")]
    WrongStatus {
        id: String,
        status: Status,
        what: &'static str,
    },
    #[error("container not running")]
    NotRunning,
    #[error("cannot exec in a paused container (use --ignore-paused)")]
    Paused,
    #[error("cannot delete container \"{id}\" that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("process.terminal is true but no --console-socket was given")]
    NoConsoleSocket,
    #[error(transparent)]
    Tty(#[from] tty::TtyError),
    #[error(
        "container \"{0}\": has no cgroup (a rootless container has none where none was delegated)"
    )]
    NoCgroup(String),
}

/// `berth state` output, in runc's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// `/proc/<pid>/stat`: the process state letter and its start time.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether the container's init is still the live process `pid`.
fn alive(s: &State) -> bool {
    s.pid > 0
        && proc_stat(s.pid)
            .is_some_and(|(state, start)| start == s.pid_start && state != 'Z' && state != 'X')
}

/// Whether init still waits on the exec fifo. `start` removes the fifo
/// once init has exec'd, but a start killed in between leaves it behind:
/// then only init's descriptor of it (closed on exec) tells. Without
/// access to init's descriptors the fifo alone counts.
fn parked(s: &State) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(fifo) = std::fs::metadata(s.dir.join(state::FIFO_NAME)) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", s.pid)) else {
        return true;
    };
    fds.flatten().any(|fd| {
        std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == (fifo.dev(), fifo.ino()))
    })
}

pub fn status(s: &State) -> Status {
    if s.phase == Phase::Creating {
        return Status::Creating;
    }
    if !alive(s) {
        return Status::Stopped;
    }
    match s.phase {
        Phase::Created if parked(s) => Status::Created,
        Phase::Created => Status::Running,
        Phase::Paused => Status::Paused,
        _ => Status::Running,
    }
}

pub fn view(s: &State) -> StateView {
    let status = status(s);
    StateView {
        oci_version: crate::OCI_VERSION.to_string(),
        id: s.id.clone(),
        pid: if status == Status::Stopped { 0 } else { s.pid },
        status,
        bundle: s.bundle.clone(),
        rootfs: s.rootfs.clone(),
        created: s.created.clone(),
        owner: String::new(),
        annotations: s.annotations.clone(),
    }
}

/// The terminal a process gets: none without `process.terminal`; else the
/// one berth relays itself (`run`, `exec -t` in the foreground), or else
/// the caller's `--console-socket`.
pub(crate) fn console_for(
    terminal: bool,
    relayed: Option<UnixStream>,
    socket: Option<&Path>,
) -> std::result::Result<Option<UnixStream>, ContainerError> {
    match (terminal, relayed, socket) {
        (false, _, _) => Ok(None),
        (true, Some(c), _) => Ok(Some(c)),
        (true, None, Some(path)) => Ok(Some(tty::connect(path)?)),
        (true, None, None) => Err(ContainerError::NoConsoleSocket),
    }
}

/// Releases a created container's init to exec the user's process, then
/// runs the poststart hooks. A failing one fails the start: the runtime
/// spec (since 1.3, as runc) has the container stopped and destroyed then,
/// its poststop hooks run, and the remaining poststart hooks skipped.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let mut c = Locked::open(root, id, Verb::Start)?;
    let fifo = c.dir.fifo_path();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        // No reader on the fifo means init is gone.
        .map_err(|_| ContainerError::NotRunning)?;
    std::io::Write::write_all(&mut &f, b"0").context("release the container's init")?;
    logging::debug(&format!("start {id}: init {} released", c.state.pid));
    wait_exec(&f);
    drop(f);
    // From here on the container counts as running (see `status`): its
    // record need not be written, so a full disk cannot fail the start.
    std::fs::remove_file(&fifo).context(format!("remove {}", fifo.display()))?;
    c.state.phase = Phase::Running;
    logging::debug(&format!("start {id}: the container's process runs"));
    let hook_state = HookState::new(&c.state, Status::Running);
    let ran = hooks::run(HookKind::Poststart, c.state.hooks.as_ref(), &hook_state);
    if let Err(e) = ran {
        drop(c);
        if let Err(d) = delete(root, id, true) {
            logging::warn(&format!("delete {id} after its poststart hook failed: {d}"));
        }
        return Err(e.into());
    }
    Ok(())
}

/// Waits until init has exec'd the user's process (or died), so that
/// poststart hooks run after it, as the runtime spec says. init's end of
/// the fifo is its only reader and close-on-exec: the writer sees POLLERR
/// once it is gone.
fn wait_exec(fifo: &std::fs::File) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// A container's recorded state, read without its lock.
pub fn load(root: &Path, id: &str) -> Result<State> {
    state::validate_id(id)?;
    Ok(state::load_file(id, &root.join(id))?)
}

pub fn state(root: &Path, id: &str) -> Result<StateView> {
    Ok(view(&load(root, id)?))
}

pub fn list(root: &Path) -> Result<Vec<StateView>> {
    let mut out = Vec::new();
    for id in state::list_ids(root)? {
        // A container deleted while we list is simply not listed.
        if let Ok(s) = state::load_file(&id, &root.join(&id)) {
            out.push(view(&s));
        }
    }
    Ok(out)
}

/// Sends a signal to the container's init, or with `all` to every process
/// in its pid namespace; `None` (signal 0) only checks they are there.
pub fn kill(root: &Path, id: &str, sig: Option<Signal>, all: bool) -> Result<()> {
    let sigkill = sig == Some(Signal::SIGKILL);
    let verb = if all || sigkill {
        Verb::KillAll
    } else {
        Verb::Kill
    };
    let Locked { state, status, .. } = Locked::open(root, id, verb)?;
    // SIGKILL takes the whole cgroup, as with runc 1.2 and later: without
    // a pid namespace of its own, init's death leaves the rest running.
    if sigkill && kill_cgroup(&state) {
        return Ok(());
    }
    match status {
        // What init left behind in a pid namespace it did not own: the
        // shims send this when such an init exits, as runc allows. Its
        // cgroup is all that finds them (init's pid may be reused).
        Status::Stopped if all => {
            signal_all(in_cgroup(&state), sig);
            return Ok(());
        }
        // SIGKILL, and the cgroup was empty already.
        Status::Stopped => return Err(ContainerError::NotRunning.into()),
        _ if all => {
            signal_all(members(&state), sig);
            return Ok(());
        }
        _ => {}
    }
    send_signal(Pid::from_raw(state.pid), sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => ContainerError::NotRunning.into(),
        e => {
            let sig = sig.map_or("0", Signal::as_str);
            crate::Error::from(OsError::new(
                format!("signal {sig} to pid {}", state.pid),
                e,
            ))
        }
    })?;
    Ok(())
}

/// Whether the container's cgroup had processes, now SIGKILLed.
fn kill_cgroup(state: &State) -> bool {
    let cgroup = state.cgroup.as_ref().map(|p| Cgroup::new(p.clone()));
    cgroup.is_some_and(|c| c.kill_all())
}

fn signal_all(pids: Vec<i32>, sig: Option<Signal>) {
    for pid in pids {
        let _ = send_signal(Pid::from_raw(pid), sig);
    }
}

/// Every process of the container: those in its cgroup, or, for a
/// container without one, those in init's own pid namespace.
fn members(state: &State) -> Vec<i32> {
    match in_cgroup(state) {
        pids if !pids.is_empty() => pids,
        _ => pid_namespace_members(state),
    }
}

fn in_cgroup(state: &State) -> Vec<i32> {
    let cgroup = state.cgroup.as_ref().map(|p| Cgroup::new(p.clone()));
    cgroup.map(|c| c.pids()).unwrap_or_default()
}

/// Processes that share init's pid namespace (init itself included). When
/// the container has no pid namespace of its own, only init.
fn pid_namespace_members(state: &State) -> Vec<i32> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let host_ns = ns_of(std::process::id() as i32);
    let Some(ns) = ns_of(state.pid).filter(|ns| Some(ns) != host_ns.as_ref()) else {
        return vec![state.pid];
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![state.pid];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ns_of(pid).as_ref() == Some(&ns))
        .collect()
}

/// Deletes a stopped or created container; `force` kills a running one.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match StateDir::open(root, id) {
        // runc: `delete --force` of a container that is already gone succeeds.
        Err(state::StateError::NotExist(_)) if force => return Ok(()),
        r => r?,
    };
    // A directory left by a create that died before its first record:
    // nothing was made yet.
    if force && !dir.has_state() {
        return Ok(dir.remove()?);
    }
    let verb = if force {
        Verb::ForceDelete
    } else {
        Verb::Delete
    };
    let Locked { dir, state, status } = Locked::from_dir(dir, verb)?;
    match status {
        // What init left in a pid namespace it did not own goes with it,
        // as runc's delete does.
        Status::Stopped => {
            kill_cgroup(&state);
        }
        // Under its lock, so its create has died.
        Status::Creating => end_processes_of_dead_create(&state),
        _ => stop(&state),
    }
    if let Some(p) = &state.cgroup {
        remove_cgroup(&Cgroup::new(p.clone()), state.scope)?;
    }
    run_poststop(&state);
    dir.remove()?;
    Ok(())
}

/// Removes a container's cgroup. A systemd scope is stopped first: a
/// cgroup removed under systemd before it saw the scope empty leaves the
/// unit active for good, and its name taken.
pub(super) fn remove_cgroup(cgroup: &Cgroup, scope: Option<Manager>) -> Result<()> {
    if let Some(manager) = scope {
        if let Err(e) = cgroups::systemd::stop_scope(&cgroup.path, manager) {
            logging::warn(&e.to_string());
        }
    }
    Ok(cgroup.destroy()?)
}

fn run_poststop(state: &State) {
    let hook_state = HookState::new(state, Status::Stopped);
    for e in hooks::run_every(HookKind::Poststop, state.hooks.as_ref(), &hook_state) {
        logging::warn(&e.to_string());
    }
}

/// Ends what a create that died half-way made: its processes, then its
/// cgroup. They die on their own once they notice (see `create`); this
/// makes sure, and waits.
pub(crate) fn end_dead_create(state: &State) -> Result<()> {
    end_processes_of_dead_create(state);
    if let Some(p) = &state.cgroup {
        remove_cgroup(&Cgroup::new(p.clone()), state.scope)?;
    }
    run_poststop(state);
    Ok(())
}

/// The recorded process (the first stage, or init once forked) is
/// signalled only while it is the same process; the cgroup holds the rest.
fn end_processes_of_dead_create(state: &State) {
    kill_cgroup(state);
    if alive(state) {
        let _ = send_signal(Pid::from_raw(state.pid), Signal::SIGKILL);
        wait_exit(state, Duration::from_secs(10));
    }
}

/// SIGKILLs everything in the container and waits until init has exited.
fn stop(state: &State) {
    if !kill_cgroup(state) {
        signal_all(members(state), Some(Signal::SIGKILL));
    }
    // Frozen processes die only once thawed.
    if let (Phase::Paused, Some(p)) = (state.phase, &state.cgroup) {
        let _ = Cgroup::new(p.clone()).freeze(false);
    }
    wait_exit(state, Duration::from_secs(10));
}

/// Waits for init to exit. berth is not init's parent, so it cannot
/// waitpid: a pidfd becomes readable when the process exits.
fn wait_exit(state: &State, limit: Duration) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, state.pid, 0) };
    if fd < 0 || !alive(state) {
        return;
    }
    // SAFETY: the syscall just returned this fd and nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(
        &mut fds,
        nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
    );
}
