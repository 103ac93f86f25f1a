//! The container side of the fork: the first stage (namespaces) and the
//! container's init (rootfs, identity, parking until `start`, exec).
//!
//! Nothing here returns: each stage ends in `_exit` or `execve`. Errors
//! before init is parked go back to berth over the sync channel; errors
//! after `start` go to the container's stderr.

use crate::capabilities;
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::rootfs;
use crate::sync::{Channel, Msg};
use crate::tty;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{fork, ForkResult, Gid, Uid};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, PosixRlimitType, Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

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
    /// `cgroup.procs` of the container's cgroup in every hierarchy.
    pub cgroup_procs: Vec<PathBuf>,
}

type Res<T> = Result<T, String>;

fn ctx<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn die(ch: &Channel, msg: String) -> ! {
    let _ = ch.send(&Msg::Error { msg });
    // SAFETY: _exit is always safe; it skips atexit handlers on purpose.
    unsafe { libc::_exit(1) }
}

/// First stage: joins and creates namespaces, then forks init.
pub fn stage1(cfg: &InitConfig, plan: &Plan, ch: Channel) -> ! {
    if let Err(msg) = stage1_setup(cfg, plan, &ch) {
        die(&ch, msg);
    }
    // SAFETY: single-threaded, as in the parent.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let msg = match container_init(cfg, plan, &ch) {
                Err(msg) => msg,
                Ok(never) => match never {},
            };
            die(&ch, msg)
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = ch.send(&Msg::InitPid {
                pid: child.as_raw(),
            });
            // SAFETY: see die().
            unsafe { libc::_exit(0) }
        }
        Err(e) => die(&ch, format!("fork the container's init: {e}")),
    }
}

fn stage1_setup(cfg: &InitConfig, plan: &Plan, ch: &Channel) -> Res<()> {
    // First, so init and everything it starts is in the container's
    // cgroup, and a new cgroup namespace is rooted there.
    for procs in &cfg.cgroup_procs {
        std::fs::write(procs, "0").map_err(|e| format!("join cgroup {}: {e}", procs.display()))?;
    }
    // Until exec, /proc/<init>/exe is berth itself: keep other processes
    // (in the container, too) from opening it through /proc.
    // SAFETY: prctl with PR_SET_DUMPABLE takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    if let Some(adj) = cfg.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(ctx("set process.oomScoreAdj"))?;
    }
    plan.join_all().map_err(|e| e.to_string())?;
    if plan.new_user {
        namespaces::unshare_flags(nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(|e| e.to_string())?;
        ch.send(&Msg::MapIds {
            pid: nix::unistd::getpid().as_raw(),
        })
        .map_err(|e| e.to_string())?;
        match ch.recv().map_err(|e| e.to_string())? {
            Msg::IdsMapped => {}
            other => return Err(format!("unexpected message {other:?}")),
        }
        become_root()?;
    }
    namespaces::unshare_flags(plan.new).map_err(|e| e.to_string())
}

fn become_root() -> Res<()> {
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g)
        .map_err(ctx("setresgid(0) in the user namespace"))?;
    nix::unistd::setresuid(root_u, root_u, root_u)
        .map_err(ctx("setresuid(0) in the user namespace"))
}

/// The container's init, pid 1 of its pid namespace when it has one.
fn container_init(cfg: &InitConfig, plan: &Plan, ch: &Channel) -> Res<std::convert::Infallible> {
    nix::unistd::setsid().map_err(ctx("setsid"))?;
    let spec = &cfg.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or("config.json: process: missing")?;
    let userns = plan.new_user || spec_has(spec, LinuxNamespaceType::User);
    rootfs::prepare(&rootfs::Ctx {
        spec,
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        userns,
    })
    .map_err(|e| e.to_string())?;
    set_names(spec, plan)?;
    ch.send(&Msg::RunHooks).map_err(|e| e.to_string())?;
    let state = match ch.recv().map_err(|e| e.to_string())? {
        Msg::HooksDone { state } => state,
        Msg::Error { msg } => return Err(msg),
        other => return Err(format!("unexpected message {other:?}")),
    };
    let all_hooks = spec.hooks().as_ref();
    hooks::run(
        "createContainer",
        hooks::of(all_hooks, "createContainer"),
        &state,
    )
    .map_err(|e| e.to_string())?;
    rootfs::pivot(&cfg.rootfs, cfg.no_pivot).map_err(|e| e.to_string())?;
    rootfs::finalize(spec).map_err(|e| e.to_string())?;
    if let Some(console) = &cfg.console {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(console, size).map_err(|e| e.to_string())?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }
    set_rlimits(process)?;
    set_identity(process)?;
    let env = environment(process);
    let program = find_program(process, &env)?;
    let argv = cstrings(process.args().as_deref().unwrap_or(&[]))?;
    let envp = cstrings(&env)?;
    ch.send(&Msg::Ready).map_err(|e| e.to_string())?;
    wait_for_start(&cfg.fifo);
    // From here on berth has returned: errors go to the container's stderr.
    let r = hooks::run(
        "startContainer",
        hooks::of(all_hooks, "startContainer"),
        &state,
    )
    .map_err(|e| e.to_string())
    .and_then(|()| prepare_exec(cfg, process));
    if let Err(msg) = r {
        eprintln!("berth: {msg}");
        // SAFETY: see die().
        unsafe { libc::_exit(1) }
    }
    let e = nix::unistd::execve(&program, &argv, &envp).unwrap_err();
    Err(format!("exec {:?}: {e}", program))
}

fn spec_has(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

fn set_names(spec: &Spec, plan: &Plan) -> Res<()> {
    if !plan.has_new(LinuxNamespaceType::Uts) {
        return Ok(());
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(ctx("set hostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe `d`, which outlives the call.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        nix::errno::Errno::result(r).map_err(ctx("set domainname"))?;
    }
    Ok(())
}

/// A fresh session keyring per container, so containers never share the
/// keys of the caller's session.
fn join_session_keyring(id: &str) -> Res<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|e| e.to_string())?;
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
        r => r.map(drop).map_err(ctx("join a new session keyring")),
    }
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as R;
    (match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::__rlimit_resource_t
}

fn set_rlimits(process: &Process) -> Res<()> {
    for r in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the rlimit struct for the duration of the call.
        let rc = unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) };
        nix::errno::Errno::result(rc).map_err(|e| {
            format!(
                "process.rlimits: {} soft {} hard {}: {e} (raising a hard limit needs CAP_SYS_RESOURCE)",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// Switches to the process's user and capabilities, in runc's order.
fn set_identity(process: &Process) -> Res<()> {
    let caps = process.capabilities().as_ref();
    if let Some(c) = caps {
        capabilities::apply_bounding(c).map_err(|e| e.to_string())?;
    }
    // SAFETY: prctl with PR_SET_KEEPCAPS takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1) };
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(ctx("process.user.additionalGids: setgroups"))?;
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid).map_err(ctx("process.user.gid: setresgid"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(ctx("process.user.uid: setresuid"))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0) };
    if let Some(c) = caps {
        capabilities::apply_sets(c).map_err(|e| e.to_string())?;
    }
    let umask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    Ok(())
}

/// The process's env, plus HOME from the container's /etc/passwd when the
/// spec leaves it out (runc does the same).
fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let uid = process.user().uid();
        env.push(format!(
            "HOME={}",
            home_of(uid).unwrap_or_else(|| "/".into())
        ));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 5 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Resolves args[0] as exec would, inside the container, so a missing
/// binary fails `create` instead of the container's first moment. The
/// wording matches runc's: Docker maps it to exit code 127.
fn find_program(process: &Process, env: &[String]) -> Res<CString> {
    let name = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or("process.args: empty")?;
    let cwd = process.cwd();
    std::fs::create_dir_all(cwd).map_err(|e| format!("process.cwd {}: {e}", cwd.display()))?;
    nix::unistd::chdir(cwd).map_err(|e| format!("process.cwd {}: chdir: {e}", cwd.display()))?;
    let path = if name.contains('/') {
        check_executable(Path::new(name)).map_err(|e| format!("exec: {name:?}: {e}"))?;
        PathBuf::from(name)
    } else {
        let search = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        search
            .split(':')
            .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
            .find(|p| check_executable(p).is_ok())
            .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))?
    };
    CString::new(path.into_os_string().into_encoded_bytes()).map_err(|e| e.to_string())
}

fn check_executable(p: &Path) -> Res<()> {
    let meta =
        std::fs::metadata(p).map_err(|e| format!("stat {}: {}", p.display(), io_text(&e)))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory", p.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("permission denied".into());
    }
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK)
        .map_err(|_| "permission denied".to_string())
}

/// "no such file or directory", without Rust's "(os error 2)" suffix.
fn io_text(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map(|n| nix::errno::Errno::from_raw(n).desc().to_lowercase())
        .unwrap_or_else(|| e.to_string())
}

fn cstrings(v: &[String]) -> Res<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

/// Blocks until `start` writes the exec fifo. A fifo with no writer yet
/// does not report hang-up, so poll sleeps until `start` arrives.
fn wait_for_start(fifo: &OwnedFd) {
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => break,
        }
    }
    let mut b = [0u8; 1];
    let _ = nix::unistd::read(fifo, &mut b);
}

/// The last steps before exec: only the fds the caller asked for stay
/// open, and no-new-privileges when the spec wants it.
fn prepare_exec(cfg: &InitConfig, process: &Process) -> Res<()> {
    let first_closed = 3 + cfg.preserve_fds.max(0) as u32;
    for fd in 3..first_closed {
        // Preserved fds must survive exec even if berth's caller set CLOEXEC.
        // SAFETY: F_SETFD on a number that may not be open fails harmlessly.
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) };
    }
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only flags fds in range.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_closed,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    nix::errno::Errno::result(r).map_err(ctx("mark fds close-on-exec"))?;
    if process.no_new_privileges() == Some(true) {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        nix::errno::Errno::result(r).map_err(ctx("set no_new_privs"))?;
    }
    Ok(())
}
