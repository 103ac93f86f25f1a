//! The container side of the fork: the first stage (namespaces) and the
//! container's init (rootfs, identity, parking until `start`, exec).
//!
//! Nothing here returns: each stage ends in `_exit` or `execve`. Errors
//! before init is parked go back to berth over the sync channel; errors
//! after `start` go to the container's stderr.

use crate::error::{Context, OsError};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, Plan};
use crate::procspec::{self, Res, SetupError};
use crate::rootfs;
use crate::rootfs::sources::Sources;
use crate::state::Status;
use crate::sync::{Channel, Msg};
use crate::tty;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{fork, ForkResult, Gid, Uid};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// What the container's init needs, prepared by berth before the fork.
pub struct InitConfig {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The exec fifo, open for reading without blocking; `start` writes it.
    pub fifo: OwnedFd,
    pub console: Option<UnixStream>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// The files the first stage writes "0" to, to join the container's
    /// cgroup in every hierarchy ([`crate::cgroups::Cgroup::join_files`]).
    pub cgroup_join: Vec<PathBuf>,
    /// The container's cgroup path, relative to each hierarchy's root.
    pub cgroup: PathBuf,
    /// systemd creates the cgroup (a scope) around the first stage.
    pub systemd_scope: bool,
    /// `linux.seccomp`, compiled before anything was created.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// berth's descriptor of the state directory, inherited by the fork.
    pub state_dir_fd: std::os::fd::RawFd,
}

/// Reports `e` to berth (or, once berth has returned, nobody) and exits.
pub(crate) fn die(ch: &Channel, e: SetupError) -> ! {
    let _ = ch.send(&Msg::Error { msg: e.to_string() });
    // SAFETY: _exit is always safe; it skips atexit handlers on purpose.
    unsafe { libc::_exit(1) }
}

/// The step both init and exec take once their first stage has joined
/// or made the namespaces: fork the container's process, whose pid the
/// first stage reports, and run `child` in it. The child waits for EOF on
/// a pipe, which comes when the first stage exits: berth then knows its
/// pid and has placed it (an exec'd process joins the cgroup only now, so
/// that a cgroup at its pids limit cannot refuse the fork).
pub(crate) fn fork_and_report(ch: &Channel, child: impl FnOnce() -> SetupError) -> ! {
    let (held, hold) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe") {
        Ok(p) => p,
        Err(e) => die(ch, e.into()),
    };
    // SAFETY: single-threaded, as in berth's main process.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(hold);
            let mut b = [0u8; 1];
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&held, &mut b) {}
            drop(held);
            die(ch, child())
        }
        Ok(ForkResult::Parent { child }) => {
            let pid = child.as_raw();
            if let Err(e) = ask(ch, &Msg::InitPid { pid }, Msg::CgroupJoined) {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                die(ch, e);
            }
            // SAFETY: see die().
            unsafe { libc::_exit(0) }
        }
        Err(e) => die(ch, OsError::new("fork", e).into()),
    }
}

/// First stage: joins and creates namespaces, then forks init.
pub fn stage1(cfg: &InitConfig, plan: &Plan, ch: Channel) -> ! {
    // A host directory open in init could be reached from the container
    // through /proc/1/fd (CVE-2024-21626). The parent's copy keeps the lock.
    // SAFETY: this process owns its copy of the descriptor and never uses it.
    unsafe { libc::close(cfg.state_dir_fd) };
    crate::fds::close_withheld();
    ch.forward_logs();
    let sources = match stage1_setup(cfg, plan, &ch) {
        Ok(sources) => sources,
        Err(e) => die(&ch, e),
    };
    fork_and_report(&ch, || match container_init(cfg, plan, &ch, sources) {
        Err(e) => e,
        Ok(never) => match never {},
    })
}

fn set_dumpable(dumpable: bool) {
    // SAFETY: prctl with PR_SET_DUMPABLE takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(dumpable)) };
}

fn stage1_setup(cfg: &InitConfig, plan: &Plan, ch: &Channel) -> Res<Sources> {
    // First, so init and everything it starts is in the container's
    // cgroup, and a new cgroup namespace is rooted there.
    let pid = nix::unistd::getpid().as_raw();
    if cfg.systemd_scope {
        ask(ch, &Msg::JoinCgroup { pid }, Msg::CgroupJoined)?;
    }
    for file in &cfg.cgroup_join {
        std::fs::write(file, "0").context(format!("join cgroup {}", file.display()))?;
    }
    crate::cgroups::reset_cpu_affinity();
    // Until exec, /proc/<init>/exe is berth itself: keep other processes
    // (in the container, too) from opening it through /proc.
    set_dumpable(false);
    if let Some(adj) = cfg.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        crate::procfs::Procfs::write_once("self/oom_score_adj", adj.to_string().as_bytes())
            .context("set process.oomScoreAdj")?;
    }
    // For a container in a user namespace, new or joined (a pod's), the
    // bind sources are taken as the host's root sees them, before any
    // namespace is joined, as runc opens them in its parent; for others
    // (idmapped sources only) once the namespaces given by path are. A
    // caller who is not root (rootless) may not clone mounts of the host's
    // namespace: it binds its sources by path, in the container's.
    let userns = plan.new_user || plan.joins(LinuxNamespaceType::User);
    let rootless = !nix::unistd::geteuid().is_root();
    let early_clones = userns && !rootless;
    let clone = || Sources::clone_all(&cfg.spec, &cfg.bundle, &cfg.rootfs, early_clones);
    let early = early_clones.then(clone).transpose()?;
    plan.join_all()?;
    let sources = match early {
        Some(sources) => sources,
        None => clone()?,
    };
    if plan.new_user {
        namespaces::unshare_flags(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        // A parent that is not root may open our uid_map only while we are
        // dumpable (runc does the same); nothing of the container runs yet.
        set_dumpable(rootless);
        ask(ch, &Msg::MapIds { pid }, Msg::IdsMapped)?;
        set_dumpable(false);
    }
    // Host root is unmapped in the container's user namespace: files it
    // made would have no owner there (EOVERFLOW). Be its root instead.
    if userns {
        become_root()?;
    }
    namespaces::unshare_flags(plan.new)?;
    if plan.has_new(LinuxNamespaceType::Network) {
        // As runc does: localhost works in a new network namespace.
        crate::netlink::Socket::open()
            .and_then(|mut s| s.set_up(crate::netlink::LOOPBACK))
            .context("set the loopback device up")?;
    }
    let linux = cfg.spec.linux().as_ref();
    if linux.and_then(|l| l.time_offsets().as_ref()).is_some()
        && plan.has_new(LinuxNamespaceType::Time)
    {
        ask(ch, &Msg::SetClocks { pid }, Msg::ClocksSet)?;
    }
    Ok(sources)
}

/// Sends a request to berth and waits for the answer `want`.
fn ask(ch: &Channel, request: &Msg, want: Msg) -> Res<()> {
    ch.send(request)?;
    let got = ch.recv()?;
    if std::mem::discriminant(&got) != std::mem::discriminant(&want) {
        return Err(SetupError::Protocol(format!("{got:?}, wanted {want:?}")));
    }
    Ok(())
}

fn become_root() -> Res<()> {
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).context("setresgid(0) in the user namespace")?;
    nix::unistd::setresuid(root_u, root_u, root_u).context("setresuid(0) in the user namespace")?;
    Ok(())
}

/// The container's init, pid 1 of its pid namespace when it has one.
fn container_init(
    cfg: &InitConfig,
    plan: &Plan,
    ch: &Channel,
    sources: Sources,
) -> Res<std::convert::Infallible> {
    crate::logging::debug("init: setting up the container");
    nix::unistd::setsid().context("setsid")?;
    let spec = &cfg.spec;
    let process = spec.process().as_ref().ok_or_else(|| SetupError::Field {
        field: "config.json: process".into(),
        why: "missing".into(),
    })?;
    // Rootless podman runs berth as root of a user namespace of its own
    // and gives the container none: mknod is just as refused there.
    let userns = plan.new_user
        || spec_has(spec, LinuxNamespaceType::User)
        || namespaces::in_user_namespace();
    let jail = rootfs::Jail::new(spec_has(spec, LinuxNamespaceType::Mount), cfg.no_pivot);
    // Without a mount namespace of its own, a bind would land in the caller's.
    let bind_console = cfg.console.is_some() && jail != rootfs::Jail::Chroot;
    rootfs::prepare(&rootfs::Ctx {
        spec,
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        userns,
        cgroup: &cfg.cgroup,
        cgroupns: plan.has_new(LinuxNamespaceType::Cgroup),
        jail,
        sources: &sources,
        console: bind_console,
    })?;
    // The clones are mounted now; none stays open while init is parked.
    drop(sources);
    set_names(spec)?;
    ch.send(&Msg::RunHooks)?;
    let state = match ch.recv()? {
        Msg::HooksDone { state } => state,
        Msg::Error { msg } => return Err(SetupError::Parent(msg)),
        other => return Err(SetupError::Protocol(format!("{other:?}"))),
    };
    let all_hooks = spec.hooks().as_ref();
    // createContainer hooks start in the container's root, not yet pivoted
    // into, as runc's do (pivot makes its own way there).
    nix::unistd::chdir(&cfg.rootfs).context("chdir to the rootfs")?;
    hooks::run(HookKind::CreateContainer, all_hooks, &state)?;
    rootfs::pivot(&cfg.rootfs, jail)?;
    rootfs::reopen_dev_null()?;
    rootfs::finalize(spec, jail)?;
    if let Some(console) = &cfg.console {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(console, size, bind_console)?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }
    if let Some(policy) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        crate::mempolicy::apply(policy)?;
    }
    let prepared = procspec::prepare(process, cfg.seccomp.as_ref(), ch)?;
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        crate::personality::set(crate::personality::of_spec(p))?;
    }
    crate::logging::debug("init: set up, parked until start");
    ch.send(&Msg::Ready)?;
    wait_for_start(&cfg.fifo, ch);
    // From here on berth has returned: errors go to the container's stderr.
    let created = state.with_status(Status::Created);
    let r = procspec::seal(&prepared, process, cfg.preserve_fds)
        .and_then(|()| Ok(hooks::run(HookKind::StartContainer, all_hooks, &created)?))
        .and_then(|()| procspec::exec(&prepared));
    let Err(e) = r;
    die_on_stderr(e)
}

/// Signals that end a process by default end the parked init too, as they
/// end runc's (`kill ID TERM` stops a created container). As pid 1 of its
/// namespace init is spared every signal it has no handler for, so it gets
/// one; exec puts the default back.
fn die_on_terminating_signals() {
    extern "C" fn exit_on(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(exit_on),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
    ] {
        // SAFETY: the handler only calls _exit; init is single-threaded.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Reports `e` on the process's own stderr and exits: once it is ready,
/// berth no longer listens, and the error is the container's to show
/// (`docker run` and `docker exec` print it).
pub(crate) fn die_on_stderr(e: SetupError) -> ! {
    // Bare, as runc prints it: the line is the process's own error.
    eprintln!("{e}");
    // SAFETY: see die().
    unsafe { libc::_exit(1) }
}

fn spec_has(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

fn set_names(spec: &Spec) -> Res<()> {
    if !spec_has(spec, LinuxNamespaceType::Uts) {
        return Ok(());
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).context("set hostname")?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe `d`, which outlives the call.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        nix::errno::Errno::result(r).context("set domainname")?;
    }
    Ok(())
}

/// A fresh session keyring per container, so containers never share the
/// keys of the caller's session.
fn join_session_keyring(id: &str) -> Res<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|_| SetupError::Nul(id.into()))?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match nix::errno::Errno::result(r) {
        // Kernels without keyrings, or a seccomp'd caller: runc carries on too.
        Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EACCES) => Ok(()),
        r => Ok(r.map(drop).context("join a new session keyring")?),
    }
}

/// Blocks until `start` writes the exec fifo. A fifo with no writer yet
/// does not report hang-up, so poll sleeps until `start` arrives. Until
/// berth has recorded the container and handed init over, berth's death
/// (end of file on the channel) ends init: nothing would ever start or
/// delete a container nobody recorded.
fn wait_for_start(fifo: &OwnedFd, ch: &Channel) {
    die_on_terminating_signals();
    let mut handed_over = false;
    loop {
        let mut fds = vec![PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        if !handed_over {
            fds.push(PollFd::new(ch.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        if fds[0].any() == Some(true) {
            break;
        }
        if fds.get(1).and_then(PollFd::any) == Some(true) {
            match ch.recv() {
                Ok(Msg::Handover) => handed_over = true,
                // berth died before the container was recorded as created.
                // SAFETY: see die().
                _ => unsafe { libc::_exit(1) },
            }
        }
    }
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(fifo, &mut b);
}
