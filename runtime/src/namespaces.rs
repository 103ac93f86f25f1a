//! Namespaces: which to create, which to join by path, and id mappings.

use crate::procfs::Procfs;
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};
use std::fs::File;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("cannot open {typ} namespace {path}: {source}")]
    Open {
        typ: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot join {typ} namespace {path}: {source}")]
    Join {
        typ: String,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("cannot create namespaces ({flags:?}): {source}")]
    Unshare {
        flags: CloneFlags,
        source: nix::Error,
    },
    #[error("cannot write {file} of pid {pid}: {source}")]
    IdMap {
        file: &'static str,
        pid: i32,
        source: std::io::Error,
    },
    /// An unprivileged caller maps more than its own id only through the
    /// setuid helpers of shadow's uidmap package, from /etc/subuid.
    #[error("{helper} for pid {pid}: {why} (an unprivileged user maps ranges beyond its own id only through newuidmap/newgidmap, from /etc/subuid and /etc/subgid)")]
    IdHelper {
        helper: &'static str,
        pid: i32,
        why: String,
    },
    #[error("linux.timeOffsets: cannot write timens_offsets: {0}")]
    TimeOffsets(std::io::Error),
    #[error("cannot make a user namespace to idmap with: {0}")]
    Holder(nix::Error),
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

struct Join {
    typ: LinuxNamespaceType,
    path: PathBuf,
    file: File,
}

impl Join {
    fn failed(&self, source: nix::Error) -> NamespaceError {
        NamespaceError::Join {
            typ: self.typ.to_string(),
            path: self.path.clone(),
            source,
        }
    }
}

/// The namespaces of one container, with the files of those it joins
/// opened up front (in berth's own mount namespace, where the paths mean
/// what the caller meant).
pub struct Plan {
    joins: Vec<Join>,
    /// Namespaces to create, user namespace excluded (it goes first).
    pub new: CloneFlags,
    pub new_user: bool,
}

impl Plan {
    pub fn from_spec(linux: Option<&Linux>) -> Result<Plan, NamespaceError> {
        let mut plan = Plan {
            joins: Vec::new(),
            new: CloneFlags::empty(),
            new_user: false,
        };
        let namespaces = linux.and_then(|l| l.namespaces().as_ref());
        for ns in namespaces.into_iter().flatten() {
            match ns.path() {
                Some(path) => {
                    let file = File::open(path).map_err(|source| NamespaceError::Open {
                        typ: ns.typ().to_string(),
                        path: path.clone(),
                        source,
                    })?;
                    plan.joins.push(Join {
                        typ: ns.typ(),
                        path: path.clone(),
                        file,
                    });
                }
                None if ns.typ() == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.new |= clone_flag(ns.typ()),
            }
        }
        Ok(plan)
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(t))
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.joins.iter().any(|j| j.typ == t)
    }

    /// Joins every namespace given by path (in the first stage). Each one
    /// the caller may join is joined before the user namespace, which takes
    /// the caller's rights over namespaces it does not own (a netns of the
    /// host's); the rest after it, which needs its rights (a rootless
    /// caller's), as runc 1.2 and later do.
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        let is_user = |j: &&Join| j.typ == LinuxNamespaceType::User;
        let mut later = Vec::new();
        for j in self.joins.iter().filter(|j| !is_user(j)) {
            match setns(&j.file, clone_flag(j.typ)) {
                Err(nix::errno::Errno::EPERM) => later.push(j),
                r => r.map_err(|source| j.failed(source))?,
            }
        }
        for j in self.joins.iter().filter(is_user).chain(later) {
            setns(&j.file, clone_flag(j.typ)).map_err(|source| j.failed(source))?;
        }
        Ok(())
    }
}

pub fn unshare_flags(flags: CloneFlags) -> Result<(), NamespaceError> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|source| NamespaceError::Unshare { flags, source })
}

/// Sets the clocks of the time namespace `pid` just made for its children
/// (`linux.timeOffsets`): possible only before a process is in it, so
/// between the first stage's unshare and init's fork. berth writes them as
/// host root: the first stage, non-dumpable in a new user namespace, may
/// not write its own /proc files.
pub fn write_time_offsets(
    pid: i32,
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<(), NamespaceError> {
    let text: String = offsets
        .iter()
        .map(|(clock, o)| {
            let (secs, nanos) = (o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0));
            format!("{clock} {secs} {nanos}\n")
        })
        .collect();
    Procfs::write_once(&format!("{pid}/timens_offsets"), text.as_bytes())
        .map_err(NamespaceError::TimeOffsets)
}

/// Whether berth runs in a user namespace other than the host's (rootless
/// podman runs its runtime as root of one): the host's maps every id.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().ne(["0", "0", "4294967295"]))
}

/// Writes uid_map and gid_map of a process in a fresh user namespace. An
/// unprivileged caller may write only a map of its own id; other maps go
/// through newuidmap and newgidmap, as runc's rootless containers do.
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let rootless = !nix::unistd::geteuid().is_root();
    // No map, or one of the caller's own id alone, is written directly.
    let direct = |maps: &[LinuxIdMapping], id: u32| match maps {
        [] => true,
        [m] => m.size() == 1 && m.host_id() == id,
        _ => false,
    };
    let uid_helper = rootless && !direct(uids, nix::unistd::geteuid().as_raw());
    let gid_helper = rootless && !direct(gids, nix::unistd::getegid().as_raw());
    // Without CAP_SETGID over the host, the kernel takes a gid_map written
    // directly only once setgroups is denied in the namespace (newgidmap,
    // setuid root, needs no such thing).
    if rootless && !gid_helper && !gids.is_empty() {
        Procfs::write_once(&format!("{pid}/setgroups"), b"deny").map_err(|source| {
            NamespaceError::IdMap {
                file: "setgroups",
                pid,
                source,
            }
        })?;
    }
    for (file, maps, helper) in [
        ("uid_map", uids, uid_helper.then_some("newuidmap")),
        ("gid_map", gids, gid_helper.then_some("newgidmap")),
    ] {
        match helper {
            Some(helper) => map_through(helper, pid, maps)?,
            None => write_map(pid, file, maps)?,
        }
    }
    Ok(())
}

fn write_map(pid: i32, file: &'static str, maps: &[LinuxIdMapping]) -> Result<(), NamespaceError> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    Procfs::write_once(&format!("{pid}/{file}"), text.as_bytes())
        .map_err(|source| NamespaceError::IdMap { file, pid, source })
}

/// `newuidmap PID ID HOST-ID SIZE...` (or newgidmap): checks the ranges
/// against /etc/subuid (/etc/subgid) and writes the map.
fn map_through(
    helper: &'static str,
    pid: i32,
    maps: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let failed = |why: String| NamespaceError::IdHelper { helper, pid, why };
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = cmd.stdin(std::process::Stdio::null()).output();
    let out = out.map_err(|e| failed(format!("cannot run it: {e}")))?;
    match out.status.success() {
        true => Ok(()),
        false => {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Err(failed(format!("{} ({said})", out.status)))
        }
    }
}

/// A user namespace with `uids` and `gids` mapped, held by its descriptor
/// alone (an idmapped mount takes its mappings from one): a child unshares
/// it and waits, berth writes its maps and opens it, and the child is
/// killed.
pub fn user_namespace_with(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<std::os::fd::OwnedFd, NamespaceError> {
    use nix::unistd::{fork, ForkResult};
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(NamespaceError::Holder)?;
    // SAFETY: the child only makes raw syscalls (no allocation, no locks)
    // until it is killed, so this is sound in a multi-threaded caller too
    // (the shim), as in berth's single-threaded first stage.
    match unsafe { fork() }.map_err(NamespaceError::Holder)? {
        ForkResult::Child => {
            let made = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, &[u8::from(made)]);
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            let held = hold_mapped(child.as_raw(), &ready_r, uids, gids);
            crate::process::kill_and_reap(child);
            held
        }
    }
}

fn hold_mapped(
    pid: i32,
    ready: &std::os::fd::OwnedFd,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<std::os::fd::OwnedFd, NamespaceError> {
    let mut made = [0u8; 1];
    match nix::unistd::read(ready, &mut made) {
        Ok(1) if made[0] == 1 => {}
        Ok(_) => return Err(NamespaceError::Holder(nix::errno::Errno::EPERM)),
        Err(e) => return Err(NamespaceError::Holder(e)),
    }
    write_id_maps(pid, uids, gids)?;
    let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
    let f = File::open(&path).map_err(|source| NamespaceError::Open {
        typ: "user".into(),
        path,
        source,
    })?;
    Ok(f.into())
}
