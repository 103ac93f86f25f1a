//! `checkpoint` and `restore` through CRIU, as runc does them: the dump
//! names what lies outside the container (bind-mount sources, a network
//! namespace it joined, the caller's stdio pipes) as external, so that the
//! restore can plug in the new bundle's sources and the new caller's pipes.
//! A dump that does not leave the container running destroys it, as runc's
//! does (`state` then says it does not exist).

use super::create::{record, CgroupPlan, CreateOpts};
use super::{Locked, Verb};
use crate::criu::{Criu, CriuError, Dirs};
use crate::error::{Context, OsError};
use crate::hooks::{self, HookKind};
use crate::spec::{self, Bundle};
use crate::state::{self, Phase, State, StateDir};
use crate::Result;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The stdio of the checkpointed init, as runc records it: what
/// /proc/PID/fd/0..2 linked to. A pipe or external file among them is
/// plugged into the restoring caller's own fd of that number.
const DESCRIPTORS: &str = "descriptors.json";

/// CRIU's key for the container's terminal, which the dump names as
/// external (its master is the console socket's caller's): the restore
/// plugs a new pty's slave in under that key.
const TERMINAL: &str = "berth-terminal";

/// Where init's terminal is bound too (in a mount namespace of its own).
const CONSOLE: &str = "/dev/console";

/// The namespace types a container may join by path, and CRIU's key for
/// one that is external (runc's names, so that images move between them).
const EXTERNAL_NAMESPACES: [(LinuxNamespaceType, &str, &str); 2] = [
    (LinuxNamespaceType::Network, "net", "extRootNetNS"),
    (LinuxNamespaceType::Pid, "pid", "extRootPidNS"),
];

/// What dump and restore share: where the images go and CRIU's options.
pub struct CriuOpts {
    pub criu: Option<String>,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

pub struct CheckpointOpts {
    pub criu: CriuOpts,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub page_server: Option<String>,
    pub status_fd: Option<i32>,
}

pub struct RestoreOpts {
    pub criu: CriuOpts,
    pub create: CreateOpts,
}

/// The terminal a restored process gets, when its config asks for one.
type Console = Option<std::os::unix::net::UnixStream>;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{verb} {id}: {source}")]
    Criu {
        verb: &'static str,
        id: String,
        source: CriuError,
    },
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error("--manage-cgroups-mode {0}: expected soft, full, strict or ignore")]
    CgroupsMode(String),
    #[error("--empty-ns {0}: only network may be left empty")]
    EmptyNs(String),
    #[error("--parent-path {}: {why}", .path.display())]
    ParentPath { path: PathBuf, why: &'static str },
    #[error("--page-server {0}: expected ADDRESS:PORT")]
    PageServer(String),
    #[error("restore {id}: {path} holds no checkpoint (no inventory.img)")]
    NoImage { id: String, path: PathBuf },
    #[error("restore {id}: process.terminal is true, but {path} records no terminal")]
    NoTerminal { id: String, path: PathBuf },
    #[error("restore {id}: criu restored no process ({0})", .path.display())]
    NoPid { id: String, path: PathBuf },
    #[error("criu-action: no CRTOOLS_INIT_PID from criu (berth runs this for criu only)")]
    NoInitPid,
    #[error("restore {id}: {msg}")]
    Hook { id: String, msg: String },
}

impl CriuOpts {
    /// criu's directories, and the extra configuration file of a
    /// container with `annotations` (see [`extra_config`]).
    fn dirs<'a>(&'a self, config: Option<&'a Path>) -> Dirs<'a> {
        Dirs {
            images: &self.image_path,
            work: self.work_path.as_deref().unwrap_or(&self.image_path),
            config,
        }
    }

    /// The flags dump and restore take alike.
    fn args(&self) -> std::result::Result<Vec<OsString>, CheckpointError> {
        let mut args: Vec<OsString> = Vec::new();
        let flags = [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
            (self.lazy_pages, "--lazy-pages"),
        ];
        args.extend(flags.iter().filter(|f| f.0).map(|f| f.1.into()));
        args.push(match &self.manage_cgroups_mode {
            None => "--manage-cgroups".into(),
            Some(m) if ["soft", "full", "strict", "ignore"].contains(&m.as_str()) => {
                format!("--manage-cgroups={m}").into()
            }
            Some(m) => return Err(CheckpointError::CgroupsMode(m.clone())),
        });
        for ns in &self.empty_ns {
            match ns.as_str() {
                "network" | "net" => args.extend(["--empty-ns".into(), "net".into()]),
                _ => return Err(CheckpointError::EmptyNs(ns.clone())),
            }
        }
        Ok(args)
    }
}

/// Dumps a running container into `image_path`; unless `leave_running`
/// (or a pre-dump), its processes end with the dump and it is deleted.
pub fn checkpoint(root: &Path, id: &str, opts: &CheckpointOpts) -> Result<()> {
    let c = Locked::open(root, id, Verb::Checkpoint)?;
    let bundle = spec::load(&c.state.bundle)?;
    let criu = Criu::new(opts.criu.criu.as_deref());
    let failed = |source| CheckpointError::Criu {
        verb: "checkpoint",
        id: id.to_owned(),
        source,
    };
    if let Some(parent) = &opts.parent_path {
        check_parent(parent, &opts.criu.image_path)?;
    }
    let tracked = opts.pre_dump || opts.parent_path.is_some();
    if tracked {
        let flag = if opts.pre_dump {
            "--pre-dump"
        } else {
            "--parent-path"
        };
        criu.require(flag, "mem_dirty_track").map_err(failed)?;
    }
    if opts.criu.lazy_pages {
        criu.require("--lazy-pages", "uffd-noncoop")
            .map_err(failed)?;
    }
    let config = extra_config(Some(&c.state.annotations));
    let dirs = opts.criu.dirs(config.as_deref());
    for dir in [dirs.images, dirs.work] {
        std::fs::create_dir_all(dir).context(format!("create {}", dir.display()))?;
    }
    let pid = c.state.pid;
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let external_stdio = write_descriptors(pid, &mounts, dirs.images)?;
    let mut args = opts.criu.args()?;
    for key in external_stdio {
        args.extend(["--external".into(), key.into()]);
    }
    if let Some(key) = terminal_key(pid, dirs.images)? {
        args.extend(["--external".into(), key.into()]);
        // init's /dev/console is a bind of the same pty slave.
        if console_bound(&mounts) {
            args.extend([
                "--external".into(),
                format!("mnt[{CONSOLE}]:{CONSOLE}").into(),
            ]);
        }
    }
    args.extend(["--tree".into(), pid.to_string().into()]);
    args.extend(["--root".into(), c.state.rootfs.clone().into()]);
    args.extend(dump_flags(opts)?);
    let cgroup = c.state.cgroup.clone().unwrap_or_default();
    // As runc: CRIU freezes the container through its freezer, which also
    // lets it dump one that is paused (containerd pauses before a dump).
    if let Some(freezer) = crate::cgroups::Cgroup::new(cgroup.clone()).freezer_dir() {
        args.extend(["--freeze-cgroup".into(), freezer.into()]);
    }
    for (dest, _) in external_mounts(&bundle.spec, &c.state.rootfs, &cgroup) {
        args.extend(["--external".into(), format!("mnt[{dest}]:{dest}").into()]);
    }
    for (ns, kind, key) in external_namespaces(&bundle.spec) {
        let ino = namespace_inode(&ns)?;
        args.extend(["--external".into(), format!("{kind}[{ino}]:{key}").into()]);
    }
    if tracked {
        args.push("--track-mem".into());
    }
    let action = if opts.pre_dump { "pre-dump" } else { "dump" };
    let inherit: Vec<i32> = opts.status_fd.into_iter().collect();
    criu.run(action, &dirs, &args, &inherit, &[])
        .map_err(failed)?;
    crate::logging::debug(&format!("checkpoint {id}: criu {action} done"));
    if opts.leave_running || opts.pre_dump {
        return Ok(());
    }
    drop(c);
    super::delete(root, id, true)
}

/// A parent (pre-dump) image directory is named relative to the image
/// path, as CRIU links it from there, and must exist (runc's rules).
fn check_parent(parent: &Path, images: &Path) -> std::result::Result<(), CheckpointError> {
    let bad = |why| CheckpointError::ParentPath {
        path: parent.to_path_buf(),
        why,
    };
    if parent.is_absolute() {
        return Err(bad("must be relative to --image-path"));
    }
    if !images.join(parent).is_dir() {
        return Err(bad("no such directory relative to --image-path"));
    }
    Ok(())
}

/// The flags only a dump takes.
fn dump_flags(opts: &CheckpointOpts) -> std::result::Result<Vec<OsString>, CheckpointError> {
    let mut args: Vec<OsString> = Vec::new();
    let flags = [
        (opts.leave_running, "--leave-running"),
        (opts.tcp_skip_in_flight, "--tcp-skip-in-flight"),
        (opts.link_remap, "--link-remap"),
    ];
    args.extend(flags.iter().filter(|f| f.0).map(|f| f.1.into()));
    if let Some(parent) = &opts.parent_path {
        args.extend(["--prev-images-dir".into(), parent.clone().into()]);
    }
    if let Some(server) = &opts.page_server {
        let (address, port) = server
            .rsplit_once(':')
            .filter(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok())
            .ok_or_else(|| CheckpointError::PageServer(server.clone()))?;
        // A lazy dump serves its pages itself, at the address; otherwise
        // it sends them to the page server there.
        if !opts.criu.lazy_pages {
            args.push("--page-server".into());
        }
        args.extend(["--address".into(), address.into()]);
        args.extend(["--port".into(), port.into()]);
    }
    if let Some(fd) = opts.status_fd {
        args.extend(["--status-fd".into(), fd.to_string().into()]);
    }
    Ok(args)
}

/// Restores a container from `image_path` under a new (or the old) id,
/// from the bundle given: the cgroup is made from its config, the rootfs
/// and bind-mount sources are its, and the restored init becomes berth's
/// child (CRIU's restore-sibling), so that `restore` without `--detach`
/// can wait for it as `run` does.
pub fn restore(opts: &RestoreOpts, console: Console) -> Result<State> {
    let id = &opts.create.id;
    state::validate_id(id)?;
    let images = &opts.criu.image_path;
    if !images.join("inventory.img").is_file() {
        return Err(CheckpointError::NoImage {
            id: id.clone(),
            path: images.clone(),
        }
        .into());
    }
    let (dir, dead) = StateDir::create(&opts.create.root, id)?;
    if let Some(dead) = dead {
        super::end_dead_create(&dead)?;
        dir.clear()?;
    }
    restore_in(&dir, opts, console).inspect_err(|_| {
        let _ = dir.remove();
    })
}

fn restore_in(dir: &StateDir, opts: &RestoreOpts, console: Console) -> Result<State> {
    let bundle = spec::load(&opts.create.bundle)?;
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = super::console_for(terminal, console, opts.create.console_socket.as_deref())?;
    let cgroup = CgroupPlan::new(&bundle, &opts.create)?;
    let mut state = record(dir, &opts.create, &bundle, &cgroup);
    dir.save(&state)?;
    cgroup.create()?;
    let restored = run_restore(dir, opts, &bundle, &cgroup, console).inspect_err(|_| {
        let _ = super::remove_cgroup(&cgroup.cgroup, cgroup.scope);
    })?;
    state.pid = restored;
    state.pid_start = super::start_time(restored).unwrap_or_default();
    state.phase = Phase::Running;
    dir.save(&state)?;
    if let Some(p) = &opts.create.pid_file {
        super::write_pid_file(p, restored)?;
    }
    Ok(state)
}

/// Runs `criu restore` from a private mount namespace of berth's, where
/// the rootfs is bound onto itself (CRIU wants its root to be a mount
/// point): the host's mount table never sees it, whatever happens to
/// berth. Returns the restored init's pid.
fn run_restore(
    dir: &StateDir,
    opts: &RestoreOpts,
    bundle: &Bundle,
    cgroup: &CgroupPlan,
    console: Console,
) -> Result<i32> {
    let id = &opts.create.id;
    let mounts = external_mounts(&bundle.spec, &bundle.rootfs, &cgroup.cgroup.path);
    private_root(&bundle.rootfs)?;
    crate::rootfs::make_mount_points(&bundle.rootfs, &mounts).map_err(CheckpointError::from)?;
    let mut args = opts.criu.args()?;
    let pidfile = dir.path.join("restored.pid");
    args.extend(["--root".into(), bundle.rootfs.clone().into()]);
    args.extend(["--restore-detached".into(), "--restore-sibling".into()]);
    args.extend(["--pidfile".into(), pidfile.clone().into()]);
    args.extend(["--cgroup-root".into(), cgroup.cgroup.path.clone().into()]);
    for (dest, source) in &mounts {
        args.extend(["--external".into(), format!("mnt[{dest}]:{source}").into()]);
    }
    let namespaces = open_external_namespaces(&bundle.spec)?;
    let mut inherit: Vec<i32> = Vec::new();
    for (fd, key) in &namespaces {
        args.extend([
            "--inherit-fd".into(),
            format!("fd[{}]:{key}", fd.as_raw_fd()).into(),
        ]);
        inherit.push(fd.as_raw_fd());
    }
    let stdio = inherited_stdio(&opts.criu.image_path)?;
    for (fd, pipe) in &stdio {
        let fd = fd.as_raw_fd();
        args.extend(["--inherit-fd".into(), format!("fd[{fd}]:{pipe}").into()]);
        inherit.push(fd);
    }
    let pty = match console {
        Some(socket) => Some(new_terminal(&socket, id, &opts.criu.image_path)?),
        None => None,
    };
    if let Some((slave, name, key)) = &pty {
        let fd = slave.as_raw_fd();
        args.extend(["--inherit-fd".into(), format!("fd[{fd}]:{key}").into()]);
        args.extend(["--external".into(), format!("mnt[{CONSOLE}]:{name}").into()]);
        inherit.push(fd);
    }
    // Only for hooks to run: criu execs the script, which needs a state
    // directory that may hold programs.
    let hooks = bundle.spec.hooks().as_ref();
    if hooks.is_some_and(|h| RESTORE_HOOKS.iter().any(|k| !k.of(h).is_empty())) {
        args.extend(["--action-script".into(), action_script(dir)?.into()]);
    }
    let join = crate::exec::open_for_writing(cgroup.cgroup.join_files())?;
    let join: Vec<OwnedFd> = join.into_iter().map(|(_, fd)| fd).collect();
    let criu = Criu::new(opts.criu.criu.as_deref());
    let config = extra_config(bundle.spec.annotations().as_ref());
    let dirs = opts.criu.dirs(config.as_deref());
    // As runc: a --work-path that does not exist yet is made.
    std::fs::create_dir_all(dirs.work).context(format!("create {}", dirs.work.display()))?;
    let ran = criu.run("restore", &dirs, &args, &inherit, &join);
    ran.map_err(
        |source| match std::fs::read_to_string(dir.path.join(ACTION_ERROR)) {
            // A hook failed: that, not criu's word for it, is the cause.
            Ok(msg) => CheckpointError::Hook {
                id: id.clone(),
                msg,
            },
            Err(_) => CheckpointError::Criu {
                verb: "restore",
                id: id.clone(),
                source,
            },
        },
    )?;
    let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
    let _ = std::fs::remove_file(&pidfile);
    let no_pid = || CheckpointError::NoPid {
        id: id.clone(),
        path: pidfile.clone(),
    };
    Ok(text.trim().parse().map_err(|_| no_pid())?)
}

/// A new pty for the restored process: its master goes to the console
/// socket; returns its slave, its name (the new /dev/console's source)
/// and the key the dump gave the old one.
fn new_terminal(
    socket: &std::os::unix::net::UnixStream,
    id: &str,
    images: &Path,
) -> Result<(OwnedFd, String, String)> {
    let path = images.join(TERMINAL);
    let no_terminal = || CheckpointError::NoTerminal {
        id: id.to_owned(),
        path: path.clone(),
    };
    let key = std::fs::read_to_string(&path).map_err(|_| no_terminal())?;
    let pty = crate::tty::Pty::open().map_err(super::ContainerError::from)?;
    crate::tty::send_master(socket, &pty.master, &pty.name).map_err(super::ContainerError::from)?;
    Ok((pty.slave, pty.name, key.trim().to_owned()))
}

/// Moves berth into a mount namespace of its own, where mounts of the
/// host still arrive but none of berth's leave, and binds `rootfs` onto
/// itself there.
fn private_root(rootfs: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("unshare a mount namespace for criu")?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none)
        .context("make / a slave mount in criu's namespace")?;
    let rec_bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(rootfs), rootfs, none, rec_bind, none)
        .context(format!("bind {} onto itself", rootfs.display()))?;
    Ok(())
}

/// The mounts whose sources lie outside the container, which CRIU keeps
/// out of the images: (destination, source) of the config's bind mounts
/// and of the binds a `cgroup` mount is made of (of `cgroup`). A
/// destination is named as the container sees it, symlinks in `rootfs`
/// resolved (where the mount really is), as runc names it.
fn external_mounts(spec: &Spec, rootfs: &Path, cgroup: &Path) -> Vec<(String, String)> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let resolved = |dest: &Path| {
        let joined = crate::rootfs::path::secure_join(rootfs, dest).ok();
        let inside =
            joined.and_then(|j| j.strip_prefix(rootfs).ok().map(|p| Path::new("/").join(p)));
        inside.unwrap_or_else(|| dest.to_path_buf())
    };
    let mut external = Vec::new();
    for m in mounts {
        let dest = &resolved(m.destination());
        if m.typ().as_deref() == Some("cgroup") {
            let binds = crate::rootfs::cgroup_binds(dest, cgroup);
            external.extend(binds.iter().map(|(d, s)| (text(d), text(s))));
        } else if let Some(source) = m.source().as_ref().filter(|_| crate::rootfs::is_bind(m)) {
            external.push((text(dest), text(source)));
        }
    }
    external
}

/// The namespaces the config joins by path, with CRIU's kind and key for
/// each.
fn external_namespaces(spec: &Spec) -> Vec<(PathBuf, &'static str, &'static str)> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
    let namespaces = namespaces.unwrap_or_default();
    EXTERNAL_NAMESPACES
        .iter()
        .filter_map(|(typ, kind, key)| {
            let ns = namespaces.iter().find(|n| n.typ() == *typ)?;
            Some((ns.path().clone()?, *kind, *key))
        })
        .collect()
}

fn open_external_namespaces(spec: &Spec) -> Result<Vec<(OwnedFd, &'static str)>> {
    external_namespaces(spec)
        .into_iter()
        .map(|(path, _, key)| {
            let fd =
                std::fs::File::open(&path).context(format!("open namespace {}", path.display()))?;
            Ok((OwnedFd::from(fd), key))
        })
        .collect()
}

fn namespace_inode(path: &Path) -> std::result::Result<u64, OsError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).context(format!("stat namespace {}", path.display()))?;
    Ok(m.ino())
}

/// Records where init's stdio led, in runc's format (a JSON list of what
/// /proc/PID/fd/N links to). A file on a mount outside the container
/// (containerd's FIFOs, which berth's shim hands over as they are) is
/// recorded under CRIU's key for it, `file[MNT_ID:INODE]`, instead; those
/// keys are returned, for the dump to name as external.
fn write_descriptors(pid: i32, mounts: &str, images: &Path) -> Result<Vec<String>> {
    let inside = mount_ids(mounts);
    let entries: Vec<String> = (0..3).map(|fd| stdio_entry(pid, fd, &inside)).collect();
    let path = images.join(DESCRIPTORS);
    let text = serde_json::to_vec(&entries).expect("strings serialise");
    std::fs::write(&path, text).context(format!("write {}", path.display()))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.starts_with("file["))
        .collect())
}

fn stdio_entry(pid: i32, fd: i32, inside: &[u64]) -> String {
    use std::os::unix::fs::MetadataExt;
    let fd_path = format!("/proc/{pid}/fd/{fd}");
    let Ok(link) = std::fs::read_link(&fd_path) else {
        return "/dev/null".into();
    };
    let link = link.to_string_lossy().into_owned();
    if ["pipe:", "socket:", "anon_inode:"]
        .iter()
        .any(|p| link.starts_with(p))
    {
        return link;
    }
    let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
    let mnt_id = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:")?.trim().parse().ok());
    let inode = std::fs::metadata(&fd_path).map(|m| m.ino());
    match (mnt_id, inode) {
        (Some(mnt), Ok(ino)) if !inside.contains(&mnt) => format!("file[{mnt:x}:{ino:x}]"),
        _ => link,
    }
}

/// The ids of the mounts of a mount table (`/proc/PID/mountinfo`).
fn mount_ids(mounts: &str) -> Vec<u64> {
    mounts
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// CRIU's key for init's terminal, if its stdio is a pty slave
/// (`tty[RDEV:DEV]`), recorded in the images for the restore.
fn terminal_key(pid: i32, images: &Path) -> Result<Option<String>> {
    for fd in 0..3 {
        let link = format!("/proc/{pid}/fd/{fd}");
        let Ok(st) = nix::sys::stat::stat(link.as_str()) else {
            continue;
        };
        if crate::tty::is_pty_slave(&st) {
            let key = format!("tty[{:x}:{:x}]", st.st_rdev, st.st_dev);
            let path = images.join(TERMINAL);
            std::fs::write(&path, &key).context(format!("write {}", path.display()))?;
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Whether init's mount table has a mount at /dev/console (the terminal
/// bound there).
fn console_bound(mounts: &str) -> bool {
    let entries = crate::rootfs::mountinfo::parse(mounts);
    entries.iter().any(|m| m.mount_point == CONSOLE)
}

/// For each stdio fd of the checkpointed init that was a pipe or an
/// external file, a copy of berth's own fd of that number (criu's stdio
/// is not berth's) and the key CRIU knows it by.
fn inherited_stdio(images: &Path) -> Result<Vec<(OwnedFd, String)>> {
    use std::os::fd::AsFd;
    let text = std::fs::read(images.join(DESCRIPTORS)).unwrap_or_default();
    let entries: Vec<String> = serde_json::from_slice(&text).unwrap_or_default();
    let inherited = |e: &String| e.starts_with("pipe:") || e.starts_with("file[");
    let mut stdio = Vec::new();
    for (n, entry) in entries
        .into_iter()
        .enumerate()
        .filter(|(_, e)| inherited(e))
    {
        let copy = match n {
            0 => std::io::stdin().as_fd().try_clone_to_owned(),
            1 => std::io::stdout().as_fd().try_clone_to_owned(),
            _ => std::io::stderr().as_fd().try_clone_to_owned(),
        };
        stdio.push((copy.context(format!("duplicate fd {n} for criu"))?, entry));
    }
    Ok(stdio)
}

/// The script criu runs at each step of a restore (`--action-script`):
/// berth's [`criu_action`] for this container, in its state directory.
fn action_script(dir: &StateDir) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let berth = std::env::current_exe().context("find berth's own binary")?;
    let root = dir.path.parent().unwrap_or(&dir.path);
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let (berth, root, id) = (quote(&berth), quote(root), quote(Path::new(&dir.id)));
    let script = format!("#!/bin/sh\nexec {berth} --root {root} criu-action {id}\n");
    let path = dir.path.join("criu-action");
    std::fs::write(&path, script).context(format!("write {}", path.display()))?;
    let executable = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(&path, executable).context(format!("chmod {}", path.display()))?;
    Ok(path)
}

/// The hooks a restore runs (at criu's setup-namespaces step).
const RESTORE_HOOKS: [HookKind; 2] = [HookKind::Prestart, HookKind::CreateRuntime];

/// One step of criu's restore of container `id`: at `setup-namespaces`,
/// once the restored init exists (`CRTOOLS_INIT_PID`) and before it goes
/// on, its prestart and createRuntime hooks run, as runc runs them from
/// criu's notification; a failing one fails the restore. The other steps
/// need nothing. The restore holds the container's lock: its record is
/// read as it is.
pub fn criu_action(root: &Path, id: &str) -> Result<()> {
    if std::env::var("CRTOOLS_SCRIPT_ACTION").as_deref() != Ok("setup-namespaces") {
        return Ok(());
    }
    // criu keeps the script's stderr to its log: the restore reads the
    // cause from the state directory.
    restore_hooks(root, id).inspect_err(|e| {
        let _ = std::fs::write(root.join(id).join(ACTION_ERROR), e.to_string());
    })
}

/// Where [`criu_action`] leaves why it failed.
const ACTION_ERROR: &str = "criu-action.error";

fn restore_hooks(root: &Path, id: &str) -> Result<()> {
    let pid = std::env::var("CRTOOLS_INIT_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    let mut state = super::load(root, id)?;
    state.pid = pid.ok_or(CheckpointError::NoInitPid)?;
    let hook_state = state::HookState::new(&state, state::Status::Creating);
    for kind in RESTORE_HOOKS {
        hooks::run(kind, state.hooks.as_ref(), &hook_state)?;
    }
    Ok(())
}

/// runc's extra criu configuration file: the one the `org.criu.config`
/// annotation names (none when it is empty), else /etc/criu/runc.conf;
/// only if it exists, as criu ignores one it cannot open under runc.
fn extra_config(annotations: Option<&HashMap<String, String>>) -> Option<PathBuf> {
    let named = annotations.and_then(|a| a.get("org.criu.config"));
    let path = PathBuf::from(named.map_or("/etc/criu/runc.conf", String::as_str));
    (!path.as_os_str().is_empty() && path.is_file()).then_some(path)
}
