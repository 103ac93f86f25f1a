//! cgroups: where a container's cgroup lives, making it, writing its
//! resources, and removing it. v1 (and the v1 controllers of a hybrid
//! host) and v2 are both plain files; the translation of resources into
//! those files is in `writes`.

pub mod bpf;
pub mod convert;
pub mod oom;
mod stats;
pub mod systemd;
pub mod writes;

use crate::rootfs::mountinfo;
use oci_spec::runtime::LinuxResources;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    /// A file only some kernels have: cgroupfs refuses to make it, with
    /// an EACCES that would send the reader looking for a permission.
    #[error("cgroup: write {value:?} to {path}: this kernel has no such file (it lacks the option or I/O scheduler behind it)")]
    NoFile { path: PathBuf, value: String },
    #[error("cgroup: create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup: remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A resource the host cannot give; worded as runc words it, since
    /// its callers look for "invalid configuration".
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
    #[error("systemd cgroup driver: {0}")]
    Dbus(#[from] crate::dbus::DbusError),
    #[error("linux.cgroupsPath: {0:?} is not a valid cgroup path")]
    BadPath(String),
    #[error("cgroup controller {0:?} is not mounted on this host, but linux.resources needs it")]
    NoController(String),
    #[error("cgroup {0}: container's cgroup unexpectedly frozen")]
    Frozen(PathBuf),
    #[error("cgroup {path}: container's cgroup is not empty: {count} process(es) found")]
    NotEmpty { path: PathBuf, count: usize },
    #[error("exec --cgroup {flag:?}: {why}")]
    SubCgroup { flag: String, why: String },
    #[error(transparent)]
    Bpf(#[from] bpf::BpfError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy: its mount point, the controllers it has, and
/// whether it is cgroup2 (the only one, or hybrid's `unified`).
#[derive(Debug)]
struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
    v2: bool,
}

impl Hierarchy {
    /// See [`Cgroup::join_files`].
    fn join_file(&self) -> &'static str {
        if self.v2 {
            "cgroup.procs"
        } else {
            "tasks"
        }
    }
}

/// A container's cgroup: the same relative path in every hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    pub path: PathBuf,
    pub version: Version,
    hierarchies: Vec<Hierarchy>,
}

/// Widens the calling process's CPU affinity to every CPU its cpuset
/// allows: a caller's narrower one (`taskset`, systemd's CPUAffinity=)
/// must not bind the container, as runc 1.2 and later reset it. The kernel
/// keeps only the CPUs the cpuset has.
pub fn reset_cpu_affinity() {
    let mut all = nix::sched::CpuSet::new();
    for cpu in 0..nix::sched::CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
}

/// The cgroup path under the systemd driver: `slice:prefix:name` only
/// (default `system.slice:berth:<id>`), as runc requires.
/// The cgroup of a container's scope: the system manager's slice, or for a
/// rootless caller (`user`, its uid) a slice of its user manager (runc's
/// default slice for it is user.slice).
pub fn systemd_path(
    spec_path: Option<&Path>,
    id: &str,
    user: Option<u32>,
) -> Result<PathBuf, CgroupError> {
    let p = spec_path
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default();
    let default_slice = if user.is_some() {
        "user.slice"
    } else {
        "system.slice"
    };
    let p = match p.is_empty() {
        true => format!("{default_slice}:berth:{id}"),
        false if p.starts_with(':') => format!("{default_slice}{p}"),
        false => p,
    };
    if p.starts_with('/') || p.split(':').count() != 3 {
        return Err(CgroupError::Invalid(format!(
            "linux.cgroupsPath: {p:?}: with --systemd-cgroup it must be \"slice:prefix:name\""
        )));
    }
    let path = container_path(Some(Path::new(&p)), id)?;
    Ok(match user {
        Some(uid) => user_manager_cgroup(uid).join(path.strip_prefix("/").unwrap_or(&path)),
        None => path,
    })
}

/// Where logind starts a user's manager (user@UID.service), under which
/// its slices and scopes live.
fn user_manager_cgroup(uid: u32) -> PathBuf {
    PathBuf::from(format!("/user.slice/user-{uid}.slice/user@{uid}.service"))
}

/// The cgroup path for a container. The systemd form `slice:prefix:name`
/// maps to the directory systemd would use (`/system.slice/prefix-name.scope`);
/// without a path, `/berth/<id>`.
pub fn container_path(spec_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let Some(p) = spec_path
        .map(|p| p.to_string_lossy().to_string())
        .filter(|p| !p.is_empty())
    else {
        return Ok(PathBuf::from("/berth").join(id));
    };
    let bad = || CgroupError::BadPath(p.clone());
    let path = match p.split(':').collect::<Vec<_>>()[..] {
        [slice, prefix, name] if !p.starts_with('/') => {
            let scope = if prefix.is_empty() {
                format!("{name}.scope")
            } else {
                format!("{prefix}-{name}.scope")
            };
            slice_dir(if slice.is_empty() {
                "system.slice"
            } else {
                slice
            })
            .join(scope)
        }
        [_] => Path::new("/").join(&p),
        _ => return Err(bad()),
    };
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad());
    }
    Ok(path)
}

/// systemd nests `a-b-c.slice` as `a.slice/a-b.slice/a-b-c.slice`.
fn slice_dir(slice: &str) -> PathBuf {
    let name = slice.trim_end_matches(".slice");
    let mut dir = PathBuf::from("/");
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        dir.push(format!("{prefix}.slice"));
    }
    dir
}

fn hierarchies() -> (Version, Vec<Hierarchy>) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let entries = mountinfo::parse(&info);
    if let Some(e) = entries
        .iter()
        .find(|e| e.mount_point == ROOT && e.fs_type == "cgroup2")
    {
        let h = Hierarchy {
            mount: PathBuf::from(&e.mount_point),
            controllers: Vec::new(),
            v2: true,
        };
        return (Version::V2, vec![h]);
    }
    let hs = entries
        .iter()
        .filter(|e| {
            e.fs_type.starts_with("cgroup")
                && Path::new(&e.mount_point).parent() == Some(Path::new(ROOT))
        })
        .map(|e| Hierarchy {
            mount: PathBuf::from(&e.mount_point),
            v2: e.fs_type == "cgroup2",
            controllers: e
                .super_opts
                .split(',')
                // Named hierarchies (name=systemd) count: runc's exec
                // --cgroup may name them.
                .filter(|o| {
                    !matches!(*o, "rw" | "ro" | "noprefix" | "clone_children")
                        && (!o.contains('=') || o.starts_with("name="))
                })
                .map(String::from)
                .collect(),
        })
        .collect();
    (Version::V1, hs)
}

/// Whether the caller may join `dir` (through `join_file`), or make it
/// below its nearest ancestor that exists.
fn may_make(dir: &Path, join_file: &str) -> bool {
    use nix::unistd::{access, AccessFlags};
    if dir.exists() {
        return access(&dir.join(join_file), AccessFlags::W_OK).is_ok();
    }
    let mut ancestor = dir.to_path_buf();
    while !ancestor.exists() && ancestor.pop() {}
    access(&ancestor, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

impl Cgroup {
    /// Finds the hierarchies on this host; touches nothing.
    pub fn new(path: PathBuf) -> Cgroup {
        let (version, hierarchies) = hierarchies();
        Cgroup {
            path,
            version,
            hierarchies,
        }
    }

    /// Only the hierarchies where the caller may make (or join) the
    /// cgroup: runc's rootless containers do without the others when the
    /// config asks nothing of them.
    pub fn writable_only(mut self) -> Cgroup {
        let all = std::mem::take(&mut self.hierarchies);
        self.hierarchies = all
            .into_iter()
            .filter(|h| may_make(&self.dir_in(h), h.join_file()))
            .collect();
        self
    }

    fn dir_in(&self, h: &Hierarchy) -> PathBuf {
        h.mount
            .join(self.path.strip_prefix("/").unwrap_or(&self.path))
    }

    /// Every directory of the cgroup, one per hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| self.dir_in(h)).collect()
    }

    fn dir_of(&self, controller: &str) -> Result<PathBuf, CgroupError> {
        let h = match self.version {
            Version::V2 => self.hierarchies.first(),
            Version::V1 => self
                .hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller)),
        };
        h.map(|h| self.dir_in(h))
            .ok_or_else(|| CgroupError::NoController(controller.to_string()))
    }

    /// Checks `r` can be expressed on this host, before anything exists.
    pub fn plan(&self, r: Option<&LinuxResources>) -> Result<Vec<writes::Write>, CgroupError> {
        let Some(r) = r else { return Ok(Vec::new()) };
        let ws = match self.version {
            Version::V1 => writes::v1(r),
            Version::V2 => writes::v2(r),
        }?;
        for w in &ws {
            self.dir_of(w.controller)?;
        }
        Ok(ws)
    }

    /// Makes the cgroup's directories and writes its resources.
    pub fn create(
        &self,
        ws: &[writes::Write],
        device_rules: &[(bool, String)],
    ) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let dir = self.dir_in(h);
            std::fs::create_dir_all(&dir).map_err(|source| CgroupError::Create {
                path: dir.clone(),
                source,
            })?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                self.inherit_cpuset(&h.mount)?;
            }
        }
        if self.version == Version::V2 {
            self.enable_controllers()?;
        }
        self.apply(ws)?;
        if self.version == Version::V1 {
            if let Ok(dir) = self.dir_of("devices") {
                for (allow, rule) in device_rules {
                    let file = if *allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    write(&dir.join(file), rule)?;
                }
            }
        }
        // v2 has no devices files: the rules become an eBPF program.
        if self.version == Version::V2 && !device_rules.is_empty() {
            if let Some(h) = self.hierarchies.first() {
                bpf::attach_device_filter(&self.dir_in(h), device_rules)?;
            }
        }
        Ok(())
    }

    /// A new v1 cpuset cgroup has no cpus or mems, and no process may join
    /// it until it has: copy them down from the nearest ancestor.
    fn inherit_cpuset(&self, mount: &Path) -> Result<(), CgroupError> {
        let mut dir = mount.to_path_buf();
        for part in self.path.components().skip(1) {
            let parent = dir.clone();
            dir.push(part);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let own = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
                if own.trim().is_empty() {
                    let inherited = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                    write(&dir.join(file), inherited.trim())?;
                }
            }
        }
        Ok(())
    }

    /// v2 controllers must be enabled in every ancestor's subtree_control.
    /// An ancestor the caller may not write (above a rootless scope of its
    /// user manager) keeps what it has, as runc leaves it: those are the
    /// controllers delegated, and a limit that needs another fails on its
    /// own file.
    fn enable_controllers(&self) -> Result<(), CgroupError> {
        // A rootless cgroup may have no hierarchy left (writable_only).
        let Some(unified) = self.hierarchies.first() else {
            return Ok(());
        };
        let mut dir = unified.mount.clone();
        let read = |dir: &Path, file| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        for part in self.path.components().skip(1) {
            let enabled = read(&dir, "cgroup.subtree_control");
            let missing: Vec<String> = read(&dir, "cgroup.controllers")
                .split_whitespace()
                .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
                .map(|c| format!("+{c}"))
                .collect();
            if !missing.is_empty() {
                match write(&dir.join("cgroup.subtree_control"), &missing.join(" ")) {
                    Err(CgroupError::Write { source, .. })
                        if source.kind() == std::io::ErrorKind::PermissionDenied => {}
                    r => r?,
                }
            }
            dir.push(part);
        }
        Ok(())
    }

    /// The files a single-threaded process writes "0" to, to join: v1's
    /// `tasks`, where moving oneself skips the kernel's global threadgroup
    /// lock and its RCU grace period (5-12 ms here, most of a `run`, where
    /// `cgroup.procs` takes it); cgroup2's `cgroup.procs`, as v2 has no
    /// such path for a domain cgroup.
    pub fn join_files(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| self.dir_in(h).join(h.join_file()))
            .collect()
    }

    /// The `cgroup.procs` files that move a whole process in by its pid.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Pids in the cgroup (empty when it does not exist).
    pub fn pids(&self) -> Vec<i32> {
        let dir = self.dir_of("pids").or_else(|_| self.dir_of("freezer"));
        let file = dir.ok().or_else(|| self.dirs().into_iter().next());
        file.and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process in the cgroup, including any forked while it
    /// runs: v2's `cgroup.kill` does it in the kernel; otherwise the cgroup
    /// is frozen around the kills, as runc does. Returns whether there was
    /// anyone to kill.
    pub fn kill_all(&self) -> bool {
        let pids = self.pids();
        if pids.is_empty() {
            return false;
        }
        let kill_file = self.dir_of("pids").map(|d| d.join("cgroup.kill"));
        if self.version == Version::V2
            && kill_file.as_ref().is_ok_and(|f| f.exists())
            && kill_file.and_then(|f| write(&f, "1")).is_ok()
        {
            return true;
        }
        let frozen = self.freeze(true).is_ok();
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if frozen {
            let _ = self.freeze(false);
        }
        true
    }

    /// Whether the cgroup, or before it exists the nearest ancestor that
    /// does, is frozen: a process put in it would stop there for good.
    pub fn frozen(&self) -> bool {
        let Ok(mut dir) = self.dir_of("freezer") else {
            return false;
        };
        while !dir.exists() && dir.pop() {}
        let (file, frozen): (&str, &[&str]) = match self.version {
            Version::V1 => ("freezer.state", &["FROZEN", "FREEZING"]),
            Version::V2 => ("cgroup.events", &["frozen 1"]),
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .any(|l| frozen.contains(&l.trim()))
    }

    /// Writes new values into an existing cgroup (`update`).
    pub fn update(&self, ws: &[writes::Write]) -> Result<(), CgroupError> {
        self.apply(ws)
    }

    /// Writes `ws` in order. Some values are refused (EINVAL) only because
    /// of one written after them: on v1 a memory limit above the current
    /// memory+swap limit, or a CPU period under which the current quota
    /// exceeds the parent's. Each refused write is tried again once the
    /// others are in, as runc does for those two.
    fn apply(&self, ws: &[writes::Write]) -> Result<(), CgroupError> {
        let mut refused = Vec::new();
        for w in ws {
            match self.write_one(w) {
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    refused.push(w)
                }
                done => done?,
            }
        }
        refused.into_iter().try_for_each(|w| self.write_one(w))
    }

    fn write_one(&self, w: &writes::Write) -> Result<(), CgroupError> {
        let path = self.dir_of(w.controller)?.join(&w.file);
        match &w.missing {
            writes::Missing::Skip if !path.exists() => Ok(()),
            writes::Missing::Instead(other) if !path.exists() => self.write_one(other),
            _ if !path.exists() && path.parent().is_some_and(Path::exists) => {
                Err(CgroupError::NoFile {
                    path,
                    value: w.value.clone(),
                })
            }
            _ => write(&path, &w.value),
        }
    }

    /// Freezes (or thaws) every process in the cgroup and waits until the
    /// kernel reports it done.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value, done_file, done): (&str, &str, &str, &str) = match (self.version, frozen)
        {
            (Version::V1, true) => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED", "freezer.state", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
            (Version::V2, false) => ("cgroup.freeze", "0", "cgroup.events", "frozen 0"),
        };
        let dir = self.dir_of("freezer")?;
        write(&dir.join(file), value)?;
        for _ in 0..1000 {
            let now = std::fs::read_to_string(dir.join(done_file)).unwrap_or_default();
            if now.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            // A v1 cgroup can stick in FREEZING; asking again nudges it.
            if self.version == Version::V1 && frozen {
                write(&dir.join(file), value)?;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Invalid(format!(
            "cgroup {} did not reach {done:?}",
            dir.display()
        )))
    }

    /// The directory whose freezer holds the container (v1's freezer
    /// hierarchy, or the cgroup2 one), if it exists.
    pub fn freezer_dir(&self) -> Option<PathBuf> {
        self.dir_of("freezer").ok().filter(|d| d.is_dir())
    }

    /// OOM kills so far: v1 `memory.oom_control`, v2 `memory.events`.
    pub fn oom_kills(&self) -> u64 {
        self.dir_of("memory")
            .map_or(0, |dir| oom::kills_in(&dir, self.version))
    }

    /// Removes the cgroup's directories, and any cgroups the container made
    /// below them (sub-cgroups first: a cgroup with children cannot go).
    pub fn destroy(&self) -> Result<(), CgroupError> {
        self.dirs().iter().try_for_each(|d| remove_tree(d))
    }

    /// The [`Cgroup::join_files`] for `exec --cgroup` (given once or
    /// more), as runc reads them: `PATH` is a path below the container's
    /// cgroup in every hierarchy, `CONTROLLER[,CONTROLLER]:PATH` one in
    /// those controllers' hierarchies (v1; the last flag naming one wins,
    /// and wins over a plain `PATH`, which runc would let override all).
    /// Hierarchies no flag picks stay the container's. Each path must
    /// exist already.
    pub fn join_files_below(&self, flags: &[String]) -> Result<Vec<PathBuf>, CgroupError> {
        let mut every = None;
        let mut named: Vec<(&str, &Path)> = Vec::new();
        for flag in flags {
            let bad = |why: String| CgroupError::SubCgroup {
                flag: flag.clone(),
                why,
            };
            let (controllers, rel) = match flag.split_once(':') {
                Some((list, rel)) => (Some(list), rel),
                None => (None, flag.as_str()),
            };
            let rel = Path::new(rel.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(bad(
                    "bad sub cgroup path: it must stay below the container's cgroup".into(),
                ));
            }
            let Some(list) = controllers else {
                every = Some(rel);
                continue;
            };
            for c in list.split(',') {
                self.check_controller(flag, c)?;
                named.push((c, rel));
            }
        }
        let mut files = Vec::new();
        for h in &self.hierarchies {
            let picked = named
                .iter()
                .rev()
                .find(|(c, _)| h.controllers.iter().any(|hc| hc == c))
                .map(|(_, rel)| *rel);
            let dir = self
                .dir_in(h)
                .join(picked.or(every).unwrap_or(Path::new("")));
            if !dir.is_dir() {
                return Err(CgroupError::SubCgroup {
                    flag: flags.join(" "),
                    why: format!(
                        "refused adding pid to {}: no such file or directory",
                        dir.display()
                    ),
                });
            }
            files.push(dir.join(h.join_file()));
        }
        Ok(files)
    }

    /// Whether `exec --cgroup` may name `controller`: a mounted v1 one.
    fn check_controller(&self, flag: &str, controller: &str) -> Result<(), CgroupError> {
        let mounted = self
            .hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| c == controller));
        let why = match (self.version, mounted) {
            (Version::V1, true) => return Ok(()),
            (Version::V1, false) => format!("unknown controller {controller:?}"),
            (Version::V2, _) => format!(
                "unknown controller {controller:?}: cgroup v2 has one hierarchy, give the path alone"
            ),
        };
        Err(CgroupError::SubCgroup {
            flag: flag.into(),
            why,
        })
    }
}

/// Removes a cgroup directory and its sub-cgroups; processes that were
/// just killed may take a moment to leave, so a busy cgroup is retried
/// briefly.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let children = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for child in children.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
        remove_tree(&child.path())?;
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_the_spec() {
        let p = |s: Option<&str>| container_path(s.map(Path::new), "c1");
        assert_eq!(p(None).unwrap(), PathBuf::from("/berth/c1"));
        assert_eq!(
            p(Some("/docker/abc")).unwrap(),
            PathBuf::from("/docker/abc")
        );
        assert_eq!(p(Some("rel/x")).unwrap(), PathBuf::from("/rel/x"));
        assert_eq!(
            p(Some("system.slice:docker:abc")).unwrap(),
            PathBuf::from("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            p(Some("machine-pod.slice:libpod:x")).unwrap(),
            PathBuf::from("/machine.slice/machine-pod.slice/libpod-x.scope")
        );
        assert!(p(Some("/a/../../etc")).is_err());
        assert!(p(Some("a:b")).is_err());
    }

    /// A v1 cgroup `/c` in a pids and a memory hierarchy under a temporary
    /// directory, with sub-cgroups `a` and `b` in both.
    fn two_hierarchies(tmp: &Path) -> Cgroup {
        let h = |name: &str| {
            for sub in ["a", "b"] {
                std::fs::create_dir_all(tmp.join(name).join("c").join(sub)).unwrap();
            }
            Hierarchy {
                mount: tmp.join(name),
                controllers: vec![name.to_string()],
                v2: false,
            }
        };
        Cgroup {
            path: PathBuf::from("/c"),
            version: Version::V1,
            hierarchies: vec![h("pids"), h("memory")],
        }
    }

    #[test]
    fn a_process_joins_v1_through_tasks_and_cgroup2_through_cgroup_procs() {
        let hybrid = Cgroup {
            path: PathBuf::from("/c"),
            version: Version::V1,
            hierarchies: ["pids", "unified"]
                .map(|name| Hierarchy {
                    mount: Path::new("/sys/fs/cgroup").join(name),
                    controllers: Vec::new(),
                    v2: name == "unified",
                })
                .into(),
        };
        assert_eq!(
            hybrid.join_files(),
            [
                PathBuf::from("/sys/fs/cgroup/pids/c/tasks"),
                PathBuf::from("/sys/fs/cgroup/unified/c/cgroup.procs")
            ]
        );
    }

    #[test]
    fn exec_cgroup_flags_pick_per_hierarchy() {
        let tmp = std::env::temp_dir().join(format!("berth-subcg-{}", std::process::id()));
        let cg = two_hierarchies(&tmp);
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let files = cg.join_files_below(&flags(&["a", "pids:b"])).unwrap();
        let unknown = cg.join_files_below(&flags(&["cpu:a"])).unwrap_err();
        let missing = cg.join_files_below(&flags(&["memory:z"])).unwrap_err();
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(
            files,
            [tmp.join("pids/c/b/tasks"), tmp.join("memory/c/a/tasks")]
        );
        assert!(unknown.to_string().contains("unknown controller \"cpu\""));
        assert!(missing
            .to_string()
            .contains("memory/c/z: no such file or directory"));
    }
}
