//! `exec`: another process in a running container. It joins the cgroup
//! and every namespace of the container's init, then becomes the given
//! `process` as init did (user, caps, rlimits, env, cwd, fds).

use crate::cgroups::Cgroup;
use crate::container::{self, Locked, Status, Verb};
use crate::error::Context;
use crate::process::{self, ProcessError};
use crate::procspec::{self, Res};
use crate::state::{HookState, State};
use crate::sync::{Channel, Msg};
use crate::{tty, Result};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Process;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub struct ExecOpts {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// `--cgroup`, once or more: the sub-cgroup(s) of the container's to
    /// run in.
    pub cgroup: Vec<String>,
    /// `--exec-wait-fifo`: a fifo (opened O_PATH) the process waits on.
    pub wait_fifo: Option<OwnedFd>,
    /// `--rootless`: the container has a cgroup only where the caller
    /// could make one (container::create).
    pub rootless: bool,
}

/// Namespaces in the order they are joined: the user namespace first (it
/// grants the rights to join the rest), the mount namespace last (after it
/// the host's paths are gone).
const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

struct Target {
    namespaces: Vec<(File, CloneFlags)>,
    console: Option<UnixStream>,
    /// The container's seccomp filter: an exec'd process gets it too.
    seccomp: Option<crate::seccomp::Filter>,
    /// Init's root, for a container jailed by chroot alone (no mount
    /// namespace of its own): joining namespaces does not jail there.
    chroot: Option<File>,
    /// Init's personality (`linux.personality`), which the process gets too.
    personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy`, which the process gets too.
    memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
    /// The container's [`Cgroup::join_files`], opened by berth: the
    /// process moves itself in once forked (a cgroup at its pids limit
    /// takes a process moved in, where it would refuse a fork there; runc
    /// moves it too), and v1's `tasks` spares it the kernel's global lock.
    cgroups: Vec<(PathBuf, OwnedFd)>,
}

/// Starts `opts.process` in container `id`; returns its pid once it is
/// about to exec. `console` overrides `--console-socket` (`exec -t` relay).
pub fn exec(root: &Path, id: &str, opts: &ExecOpts, console: Option<UnixStream>) -> Result<i32> {
    let verb = if opts.ignore_paused {
        Verb::ExecPaused
    } else {
        Verb::Exec
    };
    let Locked { dir, state, .. } = Locked::open(root, id, verb)?;
    let terminal = opts.process.terminal() == Some(true);
    let console = container::console_for(terminal, console, opts.console_socket.as_deref())?;
    let namespaces = namespaces_of(state.pid)?;
    let own_mount_ns = namespaces
        .iter()
        .any(|(_, f)| *f == CloneFlags::CLONE_NEWNS);
    let chroot = if own_mount_ns {
        None
    } else {
        Some(init_root(state.pid)?)
    };
    let cgroup = |p: &PathBuf| match opts.rootless {
        false => Cgroup::new(p.clone()),
        true => Cgroup::new(p.clone()).writable_only(),
    };
    let cgroups = match &state.cgroup {
        Some(p) if opts.cgroup.is_empty() => cgroup(p).join_files(),
        Some(p) => cgroup(p).join_files_below(&opts.cgroup)?,
        None => Vec::new(),
    };
    let target = Target {
        cgroups: open_for_writing(freezer_last(cgroups))?,
        namespaces,
        chroot,
        personality: crate::personality::of_process(state.pid).filter(|p| *p != 0),
        memory_policy: state.memory_policy.clone(),
        console,
        seccomp: state
            .seccomp
            .as_ref()
            .map(crate::seccomp::compile)
            .transpose()?,
    };
    drop(dir);
    let mut parent = ExecParent { state };
    let (pid, _) = process::spawn(|ch| stage1(&target, opts, ch), &mut parent)?;
    crate::logging::debug(&format!("exec {id}: process {pid} started"));
    if let Some(p) = &opts.pid_file {
        container::write_pid_file(p, pid)?;
    }
    Ok(pid)
}

/// An exec'd process asks berth for one thing only while it starts: to
/// hand its seccomp notification fd to the container's agent.
struct ExecParent {
    state: State,
}

impl process::Parent for ExecParent {
    fn seccomp_listener(&mut self, pid: i32, fd: OwnedFd) -> std::result::Result<(), ProcessError> {
        let profile = self.state.seccomp.as_ref();
        let profile = profile.expect("a listener comes with a profile");
        let state = HookState::new(&self.state, Status::Running);
        Ok(crate::seccomp::agent::send(profile, &state, pid, fd)?)
    }
}

/// Opens a cgroup's join files, before the fork of the process that
/// writes itself into them (an exec'd process, or criu for a restore).
pub(crate) fn open_for_writing(files: Vec<PathBuf>) -> Result<Vec<(PathBuf, OwnedFd)>> {
    files
        .into_iter()
        .map(|path| {
            let file = std::fs::OpenOptions::new().write(true).open(&path);
            let file = file.context(format!("open {} to join the cgroup", path.display()))?;
            Ok((path, OwnedFd::from(file)))
        })
        .collect()
}

/// Moves the calling (single-threaded) process into the container's
/// cgroups, then closes the files: nothing of the host's may reach the
/// program, whatever `--preserve-fds` keeps open.
fn join_cgroups(files: &[(PathBuf, OwnedFd)]) -> Res<()> {
    for (path, fd) in files {
        nix::unistd::write(fd, b"0").context(format!("join cgroup {}", path.display()))?;
        // SAFETY: this process ends in exec or _exit and never drops
        // `files`, so the descriptor is closed once and not used again.
        unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(fd)) };
    }
    Ok(())
}

/// A process that joins a frozen v1 freezer cgroup stops there at once;
/// joined last, it waits for `resume` inside all of the container's cgroups
/// (where `ps` finds it, as with runc) rather than outside the rest.
fn freezer_last(mut procs: Vec<PathBuf>) -> Vec<PathBuf> {
    procs.sort_by_key(|p| p.with_file_name("freezer.state").exists());
    procs
}

fn init_root(pid: i32) -> Result<File> {
    let path = format!("/proc/{pid}/root");
    Ok(File::open(&path).context(format!("open {path}"))?)
}

/// The namespaces of `pid` that differ from berth's own, opened now.
fn namespaces_of(pid: i32) -> Result<Vec<(File, CloneFlags)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(t), Ok(o)) => t.ino() == o.ino() && t.dev() == o.dev(),
            (Err(_), _) => true,
            _ => false,
        };
        if !same {
            let f = File::open(&theirs).context(format!("open {theirs}"))?;
            out.push((f, flag));
        }
    }
    Ok(out)
}

fn stage1(t: &Target, opts: &ExecOpts, ch: Channel) {
    ch.forward_logs();
    if let Err(e) = enter(t, &opts.process) {
        crate::init::die(&ch, e);
    }
    crate::init::fork_and_report(&ch, || match exec_child(t, opts, &ch) {
        Err(e) => e,
        Ok(never) => match never {},
    })
}

/// Joins the container's namespaces and init's root, on the CPUs
/// `execCPUAffinity.initial` names (the process then joins the cgroups:
/// see `Target::cgroups`).
fn enter(t: &Target, process: &Process) -> Res<()> {
    let affinity = process.exec_cpu_affinity().as_ref();
    if let Some(cpus) = affinity.and_then(|a| a.initial().as_deref()) {
        crate::sched::set_cpus(cpus, "process.execCPUAffinity.initial")?;
    }
    for (f, flag) in &t.namespaces {
        setns(f, *flag).context(format!("join the container's namespace ({flag:?})"))?;
    }
    if let Some(root) = &t.chroot {
        nix::unistd::fchdir(root).context("fchdir to init's root")?;
        nix::unistd::chroot(".").context("chroot to init's root")?;
    }
    Ok(())
}

/// `--exec-wait-fifo`: the program starts only once someone opens the fifo
/// for reading (a supervisor's go), long after `berth exec -d` returned.
/// Opening it for writing blocks until then; the reader then sees EOF.
fn wait_for_reader(fifo: &OwnedFd) -> Res<()> {
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fifo));
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .context("open the --exec-wait-fifo for writing")?;
    drop(writer);
    Ok(())
}

fn exec_child(t: &Target, opts: &ExecOpts, ch: &Channel) -> Res<std::convert::Infallible> {
    crate::logging::debug("exec: setting up the process");
    join_cgroups(&t.cgroups)?;
    // In the cgroups now, whose cpuset may have reset the affinity.
    let affinity = opts.process.exec_cpu_affinity().as_ref();
    match affinity.and_then(|a| a.cpu_affinity_final().as_deref()) {
        Some(cpus) => crate::sched::set_cpus(cpus, "process.execCPUAffinity.final")?,
        None => crate::cgroups::reset_cpu_affinity(),
    }
    nix::unistd::setsid().context("setsid")?;
    if let Some(console) = &t.console {
        let size = opts
            .process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(console, size, false)?;
    }
    if let Some(policy) = &t.memory_policy {
        crate::mempolicy::apply(policy)?;
    }
    let prepared = procspec::prepare_with(
        &opts.process,
        procspec::MissingCwd::Fail,
        t.seccomp.as_ref(),
        ch,
    )?;
    if let Some(p) = t.personality {
        crate::personality::set(p)?;
    }
    crate::logging::debug("exec: the process is set up; its program follows");
    ch.send(&Msg::Ready)?;
    if let Some(fifo) = &opts.wait_fifo {
        wait_for_reader(fifo)?;
    }
    let r = procspec::seal(&prepared, &opts.process, opts.preserve_fds)
        .and_then(|()| procspec::exec(&prepared));
    let Err(e) = r;
    crate::init::die_on_stderr(e)
}
