//! Turning the calling process into the spec's `process`: rlimits, user
//! and groups, capabilities, umask, environment, the executable, the fds
//! that survive exec and no-new-privileges. Shared by a container's init
//! and by `exec`.

use crate::capabilities;
use crate::error::{Context, OsError};
use crate::seccomp::Filter;
use crate::sync::{Channel, Msg};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the container side could not become the spec's process (shared
/// by init and exec, whose messages reach berth's caller over the sync
/// channel, or the container's stderr once berth has returned).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Os(#[from] OsError),
    /// A value of the spec this process cannot take on.
    #[error("{field}: {why}")]
    Field { field: String, why: String },
    /// `process.args[0]` cannot be run (runc's wording: Docker maps it to
    /// exit code 127).
    #[error("exec: {name:?}: {why}")]
    Program { name: String, why: String },
    /// The final execve failed (Go's wording, which runc prints).
    #[error("exec {program}: {why}")]
    Exec { program: String, why: String },
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    #[error("unexpected message {0}")]
    Protocol(String),
    /// berth's side failed and said why.
    #[error("{0}")]
    Parent(String),
    #[error(transparent)]
    Caps(#[from] capabilities::CapsError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::ApplyError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Tty(#[from] crate::tty::TtyError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
}

pub type Res<T> = Result<T, SetupError>;

fn field(field: impl Into<String>, why: impl Into<String>) -> SetupError {
    SetupError::Field {
        field: field.into(),
        why: why.into(),
    }
}

/// A process ready to exec: everything resolved while errors can still
/// reach berth.
pub struct Prepared {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// A filter that goes in at [`seal`] (with no-new-privileges).
    late_seccomp: Option<Filter>,
}

/// What to do when `process.cwd` does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MissingCwd {
    /// Make it: a container's init (runc does the same).
    Create,
    /// Fail: `exec` must not change the container's filesystem.
    Fail,
}

/// [`prepare_with`] for a container's init.
pub fn prepare(process: &Process, seccomp: Option<&Filter>, ch: &Channel) -> Res<Prepared> {
    prepare_with(process, MissingCwd::Create, seccomp, ch)
}

/// Applies limits and identity, enters the cwd and resolves the program.
/// The seccomp filter goes in as runc puts it: without no-new-privileges
/// loading needs CAP_SYS_ADMIN, so before the capabilities are dropped;
/// with it, as late as possible (see [`seal`]), unless it notifies an
/// agent: then its fd goes to berth over `ch` while berth still waits.
pub fn prepare_with(
    process: &Process,
    missing_cwd: MissingCwd,
    seccomp: Option<&Filter>,
    ch: &Channel,
) -> Res<Prepared> {
    let nnp = process.no_new_privileges() == Some(true);
    set_rlimits(process)?;
    // Raising a priority needs CAP_SYS_NICE, which set_identity may drop.
    crate::sched::apply(process)?;
    crate::lsm::set_exec_labels(process)?;
    if let Some(f) = seccomp.filter(|f| !nnp || f.notifies()) {
        if nnp {
            set_no_new_privs()?;
        }
        if let Some(fd) = f.load()? {
            ch.send_fd(&Msg::SeccompListener, fd)?;
        }
    }
    enter_cwd_around(process.cwd(), missing_cwd, || set_identity(process))?;
    let env = environment(process);
    Ok(Prepared {
        program: find_program(process, &env)?,
        argv: cstrings(process.args().as_deref().unwrap_or(&[]))?,
        envp: cstrings(&env)?,
        late_seccomp: seccomp.filter(|f| nnp && !f.notifies()).cloned(),
    })
}

/// The last steps before exec that may still run code of others (the
/// startContainer hooks, which runc runs under the filter as well): only
/// the fds the caller asked for stay open, no-new-privileges, and a late
/// seccomp filter.
pub fn seal(p: &Prepared, process: &Process, preserve_fds: i32) -> Res<()> {
    prepare_exec(preserve_fds, process)?;
    if let Some(f) = &p.late_seccomp {
        // Never a notification fd: such filters went in earlier.
        f.load()?;
    }
    Ok(())
}

/// Execs the prepared program, once [`seal`]ed.
pub fn exec(p: &Prepared) -> Res<std::convert::Infallible> {
    let e = nix::unistd::execve(&p.program, &p.argv, &p.envp).unwrap_err();
    // Go's wording, which runc prints and people grep for.
    Err(SetupError::Exec {
        program: p.program.to_string_lossy().into_owned(),
        why: e.desc().to_lowercase(),
    })
}

/// The resource number (its C type differs between glibc and musl).
#[allow(clippy::unnecessary_cast)] // u32 on glibc, c_int on musl
fn rlimit_resource(t: PosixRlimitType) -> u32 {
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
    }) as u32
}

fn set_rlimits(process: &Process) -> Res<()> {
    for r in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the rlimit struct for the duration of the call.
        let rc = unsafe { libc::setrlimit(rlimit_resource(r.typ()) as _, &lim) };
        nix::errno::Errno::result(rc).map_err(|e| {
            field(
                "process.rlimits",
                format!(
                    "{} soft {} hard {}: {e} (raising a hard limit needs CAP_SYS_RESOURCE)",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            )
        })?;
    }
    Ok(())
}

/// setres[ug]id's error: EINVAL means the id has no mapping in this user
/// namespace, which runc says in so many words.
fn unmapped(field: &'static str, id: u32) -> impl FnOnce(nix::errno::Errno) -> SetupError {
    move |errno| match errno {
        nix::errno::Errno::EINVAL => SetupError::Field {
            field: field.into(),
            why: format!("{id} is not mapped in the user namespace"),
        },
        e => OsError::new(format!("{field}: {id}"), e).into(),
    }
}

/// Whether this user namespace denies setgroups(2) for good.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Switches to the process's user and capabilities, in runc's order.
fn set_identity(process: &Process) -> Res<()> {
    let caps = process.capabilities().as_ref();
    if let Some(c) = caps {
        capabilities::apply_bounding(c)?;
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
    // A rootless user namespace denies setgroups (the kernel's condition
    // for its gid_map written by its unprivileged owner; init holds every
    // cap here, so that is the one EPERM): the caller's groups stay, as
    // with runc, which drops the groups asked for there (rootless podman
    // asks for some on exec).
    match nix::unistd::setgroups(&groups) {
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {}
        r => r.context("process.user.additionalGids: setgroups")?,
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    give_stdio_to(uid, process.terminal() == Some(true))?;
    nix::unistd::setresgid(gid, gid, gid).map_err(unmapped("process.user.gid", user.gid()))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(unmapped("process.user.uid", user.uid()))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0) };
    if let Some(c) = caps {
        capabilities::apply_sets(c)?;
    }
    let umask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    Ok(())
}

/// Makes `uid` the owner of stdin, stdout and stderr (its pty, a caller's
/// pipes) while the process may still chown, so that it can reopen them
/// (/dev/stdout, /proc/self/fd/1) once it is that user. The group stays,
/// as with runc, and so does what the container may not chown (an owner
/// or group unmapped in its user namespace). Of devices only the
/// container's own pty is given: without one, a device is /dev/null or
/// the caller's terminal (`run` from a shell), which runc would hand over
/// too when it does not make pipes of its own.
fn give_stdio_to(uid: Uid, own_pty: bool) -> Res<()> {
    use std::os::fd::AsFd;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for (n, fd) in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]
        .into_iter()
        .enumerate()
    {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue; // not open
        };
        let device = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
        if (device && !own_pty) || st.st_uid == uid.as_raw() {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid), Some(Gid::from_raw(st.st_gid))) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => {}
            Err(e) => {
                return Err(field(
                    "process.user.uid",
                    format!("give fd {n}: fchown: {e}"),
                ))
            }
        }
    }
    Ok(())
}

/// The process's env with one entry per name, the last one given (as
/// runc and a shell's `export` keep it), plus HOME from the container's
/// /etc/passwd when the spec leaves it out or empty (runc does the same).
fn environment(process: &Process) -> Vec<String> {
    let given = process.env().as_deref().unwrap_or_default();
    let name = |e: &str| e.split_once('=').map_or(e, |(n, _)| n).to_string();
    let mut seen = std::collections::HashSet::new();
    let mut env: Vec<String> = given
        .iter()
        .rev()
        .filter(|e| seen.insert(name(e)))
        .cloned()
        .collect();
    env.reverse();
    env.retain(|e| e != "HOME=");
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
        .ok_or_else(|| field("process.args", "empty"))?;
    let path = if name.contains('/') {
        check_executable(name, Path::new(name))?;
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
            .find(|p| check_executable(name, p).is_ok())
            .ok_or_else(|| SetupError::Program {
                name: name.clone(),
                why: "executable file not found in $PATH".into(),
            })?
    };
    let path = path.into_os_string().into_encoded_bytes();
    CString::new(path).map_err(|e| SetupError::Nul(String::from_utf8_lossy(&e.into_vec()).into()))
}

/// Enters `cwd` around `switch_user`, in runc's order: first as root, who
/// may enter a directory the user may not (/root is 0700); refused that,
/// again as the user, who may own one root cannot enter (a root-squashed
/// NFS volume).
fn enter_cwd_around(
    cwd: &Path,
    missing: MissingCwd,
    switch_user: impl FnOnce() -> Res<()>,
) -> Res<()> {
    if missing == MissingCwd::Create {
        std::fs::create_dir_all(cwd).map_err(|e| cwd_error(cwd, io_text(&e)))?;
    }
    let denied = match nix::unistd::chdir(cwd) {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES) => true,
        Err(e) => return Err(chdir_error(cwd, e)),
    };
    switch_user()?;
    if denied {
        nix::unistd::chdir(cwd).map_err(|e| chdir_error(cwd, e))?;
    }
    // A cwd through a descriptor of berth's (/proc/self/fd/N) could land
    // outside the container's root (runc's CVE-2024-21626); the kernel
    // then has no path for it below the root.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(cwd_error(cwd, "is outside the container's root".into())),
    }
}

fn chdir_error(cwd: &Path, e: nix::errno::Errno) -> SetupError {
    cwd_error(cwd, format!("chdir: {}", e.desc().to_lowercase()))
}

fn cwd_error(cwd: &Path, why: String) -> SetupError {
    field(format!("process.cwd {}", cwd.display()), why)
}

/// Whether `p` can be exec'd as `process.args[0]` (`name`); why not, in
/// runc's words.
fn check_executable(name: &str, p: &Path) -> Res<()> {
    let refuse = |why: String| SetupError::Program {
        name: name.into(),
        why,
    };
    let meta = std::fs::metadata(p)
        .map_err(|e| refuse(format!("stat {}: {}", p.display(), io_text(&e))))?;
    if meta.is_dir() {
        return Err(refuse(format!("{} is a directory", p.display())));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(refuse("permission denied".into()));
    }
    // AT_EACCESS: as execve will judge it, with the effective ids and caps
    // (CAP_DAC_OVERRIDE lets a user run a file only its owner may).
    nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        p,
        nix::unistd::AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .map_err(|_| refuse("permission denied".into()))
}

/// "no such file or directory", without Rust's "(os error 2)" suffix.
fn io_text(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map(|n| nix::errno::Errno::from_raw(n).desc().to_lowercase())
        .unwrap_or_else(|| e.to_string())
}

fn cstrings(v: &[String]) -> Res<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| SetupError::Nul(s.clone())))
        .collect()
}

/// The last steps before exec: only the fds the caller asked for stay
/// open, and no-new-privileges when the spec wants it.
fn prepare_exec(preserve_fds: i32, process: &Process) -> Res<()> {
    let first_closed = 3 + preserve_fds.max(0) as u32;
    for fd in 3..first_closed {
        // Preserved fds must survive exec even if berth's caller set CLOEXEC.
        // SAFETY: F_SETFD on a number that may not be open fails harmlessly.
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) };
    }
    cloexec_from(first_closed)?;
    if process.no_new_privileges() == Some(true) {
        set_no_new_privs()?;
    }
    Ok(())
}

/// Flags every fd from `first` on close-on-exec. A seccomp profile loaded
/// before (without no-new-privileges) may predate close_range and refuse
/// it (EPERM) or answer ENOSYS: then each fd open in /proc/self/fd gets
/// the flag through fcntl, which every profile allows.
fn cloexec_from(first: u32) -> Res<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only flags fds in range.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match nix::errno::Errno::result(r) {
        Ok(_) => Ok(()),
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::ENOSYS) => cloexec_each_from(first),
        Err(e) => Err(OsError::new("mark fds close-on-exec", e).into()),
    }
}

fn cloexec_each_from(first: u32) -> Res<()> {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .context("mark fds close-on-exec: /proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in open {
        // SAFETY: F_SETFD takes a plain integer; the directory's own fd,
        // listed but closed by now, fails harmlessly with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

fn set_no_new_privs() -> Res<()> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    nix::errno::Errno::result(r)
        .map(drop)
        .context("set no_new_privs")
        .map_err(SetupError::from)
}
