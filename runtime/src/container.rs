//! The lifecycle verbs: create, start, state, kill, delete, list.
//!
//! Each verb locks the container's state directory, works out the real
//! status (the recorded phase, corrected by whether init still lives) and
//! acts on it. Errors use the words containerd and Docker match on:
//! "does not exist" and "container not running".

use crate::cgroups::{self, Cgroup};
use crate::hooks;
use crate::init::InitConfig;
use crate::namespaces::Plan;
use crate::process;
use crate::spec::{self, Bundle};
use crate::state::{self, Phase, State, StateDir};
use crate::tty;
use crate::{logging, Result};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxDeviceCgroup;
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
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Sys { what, source }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let s = serde_json::to_value(self).expect("status serializes");
        f.write_str(s.as_str().unwrap_or_default())
    }
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

pub fn status(s: &State) -> Status {
    if s.phase == Phase::Creating {
        return Status::Creating;
    }
    if !alive(s) {
        return Status::Stopped;
    }
    match s.phase {
        Phase::Created => Status::Created,
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

/// The state hooks receive on stdin (the runtime spec's state).
fn hook_state(s: &State, status: Status) -> String {
    serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "id": s.id,
        "status": status,
        "pid": s.pid,
        "bundle": s.bundle,
        "annotations": s.annotations,
    })
    .to_string()
}

pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

/// Creates a container and leaves its init parked until `start`.
/// `console` overrides `--console-socket` (used by `run` to proxy a tty).
pub fn create(opts: &CreateOpts, console: Option<UnixStream>) -> Result<State> {
    state::validate_id(&opts.id)?;
    let bundle = spec::load(&opts.bundle)?;
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = match (terminal, console, &opts.console_socket) {
        (false, _, _) => None,
        (true, Some(c), _) => Some(c),
        (true, None, Some(path)) => Some(tty::connect(path).map_err(ContainerError::from)?),
        (true, None, None) => return Err(ContainerError::NoConsoleSocket.into()),
    };
    let plan =
        Plan::from_spec(bundle.spec.linux().as_ref()).map_err(process::ProcessError::from)?;
    let cgroup = CgroupPlan::new(&bundle, &opts.id)?;
    let dir = StateDir::create(&opts.root, &opts.id)?;
    match create_in(&dir, opts, bundle, console, &plan, &cgroup) {
        Ok(s) => Ok(s),
        Err(e) => {
            let _ = cgroup.cgroup.destroy();
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// The container's cgroup and everything to write into it, checked
/// before anything is created.
struct CgroupPlan {
    cgroup: Cgroup,
    writes: Vec<cgroups::writes::Write>,
    device_rules: Vec<(bool, String)>,
}

impl CgroupPlan {
    fn new(bundle: &Bundle, id: &str) -> Result<CgroupPlan> {
        let linux = bundle.spec.linux().as_ref();
        let path = cgroups::container_path(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
        let cgroup = Cgroup::new(path);
        let resources = linux.and_then(|l| l.resources().as_ref());
        let writes = cgroup.plan(resources)?;
        let nodes: Vec<String> = linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or(&[])
            .iter()
            .map(|d| {
                let mut rule = LinuxDeviceCgroup::default();
                rule.set_typ(Some(d.typ()));
                rule.set_major(Some(d.major()));
                rule.set_minor(Some(d.minor()));
                cgroups::writes::device_rule(&rule)
            })
            .collect();
        let device_rules = cgroups::writes::device_rules(resources, &nodes);
        if cgroup.version == cgroups::Version::V2
            && resources.is_some_and(|r| r.devices().is_some())
        {
            logging::warn(
                "linux.resources.devices: device rules are not enforced on cgroup v2 yet",
            );
        }
        Ok(CgroupPlan {
            cgroup,
            writes,
            device_rules,
        })
    }
}

fn create_in(
    dir: &StateDir,
    opts: &CreateOpts,
    bundle: Bundle,
    console: Option<UnixStream>,
    plan: &Plan,
    cgroup: &CgroupPlan,
) -> Result<State> {
    let fifo = make_fifo(&dir.fifo_path())?;
    cgroup.cgroup.create(&cgroup.writes, &cgroup.device_rules)?;
    let linux = bundle.spec.linux().as_ref();
    let mut state = State {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        phase: Phase::Creating,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::clock::now_rfc3339(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        hooks: bundle.spec.hooks().clone(),
        cgroup: Some(cgroup.cgroup.path.clone()),
    };
    let cfg = InitConfig {
        id: opts.id.clone(),
        uid_mappings: linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default(),
        gid_mappings: linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default(),
        spec: bundle.spec,
        bundle: bundle.path,
        rootfs: bundle.rootfs,
        fifo,
        console,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        cgroup_procs: cgroup.cgroup.procs_files(),
        cgroup: cgroup.cgroup.path.clone(),
    };
    let hooks_of = |kind| hooks::of(state.hooks.as_ref(), kind);
    let mut runtime_hooks = |pid: i32| {
        let mut s = state.clone();
        s.pid = pid;
        let json = hook_state(&s, Status::Creating);
        hooks::run("prestart", hooks_of("prestart"), &json)?;
        hooks::run("createRuntime", hooks_of("createRuntime"), &json)?;
        Ok(hook_state(&s, Status::Created))
    };
    let launched = process::launch(&cfg, plan, &mut runtime_hooks);
    let pid = match launched {
        Ok(pid) => pid,
        Err(e) => {
            run_poststop(&state);
            return Err(e.into());
        }
    };
    state.pid = pid;
    state.pid_start = start_time(pid).unwrap_or_default();
    state.phase = Phase::Created;
    dir.save(&state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(state)
}

fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(sys(format!("mkfifo {}", path.display())))?;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys(format!("open {}", path.display())))?;
    Ok(fd)
}

/// Written via a temporary file and rename, so readers never see a
/// partial pid (containerd reads it as soon as create returns).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string())
        .map_err(io(format!("write pid file {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("write pid file {}", path.display())))?;
    Ok(())
}

/// Releases a created container's init to exec the user's process.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let mut state = dir.load()?;
    match status(&state) {
        Status::Created => {}
        Status::Stopped => return Err(ContainerError::NotRunning.into()),
        status => {
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status,
                what: "only a created container can be started",
            }
            .into())
        }
    }
    let fifo = dir.fifo_path();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        // No reader on the fifo means init is gone.
        .map_err(|_| ContainerError::NotRunning)?;
    std::io::Write::write_all(&mut &f, b"0").map_err(io("release the container's init"))?;
    drop(f);
    let _ = std::fs::remove_file(&fifo);
    state.phase = Phase::Running;
    dir.save(&state)?;
    let json = hook_state(&state, Status::Running);
    if let Err(e) = hooks::run(
        "poststart",
        hooks::of(state.hooks.as_ref(), "poststart"),
        &json,
    ) {
        // The runtime spec: a failing poststart hook is a warning only.
        logging::warn(&e.to_string());
    }
    Ok(())
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
/// in its pid namespace.
pub fn kill(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    if matches!(status(&state), Status::Stopped | Status::Creating) {
        return Err(ContainerError::NotRunning.into());
    }
    if all {
        for pid in members(&state) {
            let _ = send_signal(Pid::from_raw(pid), sig);
        }
        return Ok(());
    }
    send_signal(Pid::from_raw(state.pid), sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => ContainerError::NotRunning,
        e => sys(format!("signal {sig} to pid {}", state.pid))(e),
    })?;
    Ok(())
}

/// Every process of the container: those in its cgroup, or, for a
/// container without one, those in init's own pid namespace.
fn members(state: &State) -> Vec<i32> {
    let in_cgroup = state.cgroup.as_ref().map(|p| Cgroup::new(p.clone()).pids());
    match in_cgroup {
        Some(pids) if !pids.is_empty() => pids,
        _ => pid_namespace_members(state),
    }
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
    let state = match dir.load() {
        Ok(s) => s,
        // A directory left by a create that died half-way: nothing to stop.
        Err(state::StateError::NotExist(_)) if force => return Ok(dir.remove()?),
        Err(e) => return Err(e.into()),
    };
    match status(&state) {
        Status::Stopped => {}
        Status::Created => stop(&state),
        _ if force => stop(&state),
        status => {
            return Err(ContainerError::NotStopped {
                id: id.into(),
                status,
            }
            .into())
        }
    }
    if let Some(p) = &state.cgroup {
        Cgroup::new(p.clone()).destroy()?;
    }
    run_poststop(&state);
    dir.remove()?;
    Ok(())
}

fn run_poststop(state: &State) {
    let json = hook_state(state, Status::Stopped);
    if let Err(e) = hooks::run(
        "poststop",
        hooks::of(state.hooks.as_ref(), "poststop"),
        &json,
    ) {
        logging::warn(&e.to_string());
    }
}

/// SIGKILLs everything in the container and waits until init has exited.
fn stop(state: &State) {
    for pid in members(state) {
        let _ = send_signal(Pid::from_raw(pid), Signal::SIGKILL);
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
