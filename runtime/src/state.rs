//! The state directory: one directory per container under `--root`, holding
//! `state.json` (written atomically) and the exec fifo. Every verb that
//! changes a container holds an exclusive `flock` on its directory, so
//! operations on one id never interleave.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

const STATE_FILE: &str = "state.json";
pub const FIFO_NAME: &str = "exec.fifo";
const MAX_ID_LEN: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    #[error("container with id \"{0}\" already exists")]
    Exists(String),
    #[error("state of container \"{id}\" in {path}: {source}")]
    Io {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state of container \"{id}\" is corrupt: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

/// Where a container is in its life, as far as berth recorded it; whether
/// the process still lives is checked separately (see `container`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Created,
    Running,
    Paused,
}

/// What berth keeps about a container between invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot), so a recycled pid is
    /// never mistaken for the container.
    pub pid_start: u64,
    pub phase: Phase,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Hooks that run after `create` returned (poststart, poststop), kept
    /// so a later edit of config.json cannot change them.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's cgroup path, relative to each hierarchy's root.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// The systemd manager whose scope that cgroup is (`--systemd-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::cgroups::systemd::Manager>,
    /// `linux.seccomp`, which exec'd processes get too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `linux.memoryPolicy`, which exec'd processes get too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
    /// The state directory the record is in (not recorded: it is where
    /// the record was found).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A container's status, as the runtime spec names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The runtime spec's state of the container, as hooks receive it on
/// stdin and a seccomp agent along with the notification fd.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState {
    oci_version: String,
    id: String,
    status: Status,
    pid: i32,
    bundle: PathBuf,
    annotations: HashMap<String, String>,
}

impl HookState {
    /// The same container in another status (init's startContainer hooks
    /// see "created" where its createContainer hooks saw "creating").
    pub fn with_status(self, status: Status) -> HookState {
        HookState { status, ..self }
    }

    pub fn new(s: &State, status: Status) -> HookState {
        HookState {
            oci_version: crate::OCI_VERSION.to_string(),
            id: s.id.clone(),
            status,
            pid: s.pid,
            bundle: s.bundle.clone(),
            annotations: s.annotations.clone(),
        }
    }
}

pub fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |why| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            why,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 255 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    if !id.chars().all(ok) {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// A container's state directory, locked for as long as this value lives.
pub struct StateDir {
    pub id: String,
    pub path: PathBuf,
    lock: Flock<File>,
}

impl StateDir {
    /// Makes and locks the directory of a new container. The id is taken
    /// while its directory holds a container. A directory that a create
    /// left when it died (its lock free, its record `creating` or not yet
    /// written) is taken over, and that record returned, so that the caller
    /// can end what the dead create made.
    pub fn create(root: &Path, id: &str) -> Result<(StateDir, Option<State>), StateError> {
        validate_id(id)?;
        let io = |path: &Path| {
            let (id, path) = (id.to_string(), path.to_path_buf());
            move |source| StateError::Io { id, path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io(root))?;
        let path = root.join(id);
        // A directory removed while we wait for its lock is made again;
        // a bounded number of times, against an endless create-delete race.
        for _ in 0..8 {
            let made = match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
                Err(e) => return Err(io(&path)(e)),
            };
            let dir = match Self::lock(id, path.clone()) {
                Err(StateError::NotExist(_)) => continue,
                r => r?,
            };
            return match dir.load() {
                Err(StateError::NotExist(_)) => Ok((dir, None)),
                // Another create took over what we made before we locked it.
                Ok(_) if made => Err(StateError::Exists(id.to_string())),
                Ok(dead) if dead.phase == Phase::Creating => Ok((dir, Some(dead))),
                _ => Err(StateError::Exists(id.to_string())),
            };
        }
        Err(StateError::Exists(id.to_string()))
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        Self::lock(id, root.join(id))
    }

    fn lock(id: &str, path: PathBuf) -> Result<StateDir, StateError> {
        let lock = File::open(&path).map_err(|source| match source.kind() {
            ErrorKind::NotFound => StateError::NotExist(id.to_string()),
            _ => StateError::Io {
                id: id.to_string(),
                path: path.clone(),
                source,
            },
        })?;
        let lock = Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| StateError::Io {
            id: id.to_string(),
            path: path.clone(),
            source: e.into(),
        })?;
        // A concurrent delete may have removed the directory while we waited.
        if !path.exists() {
            return Err(StateError::NotExist(id.to_string()));
        }
        Ok(StateDir {
            id: id.to_string(),
            path,
            lock,
        })
    }

    /// The descriptor of the locked directory: a host directory, which a
    /// container's init must not keep open (see `init::stage1`).
    pub fn dir_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self.lock)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(FIFO_NAME)
    }

    fn io_err(&self, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
        let (id, path) = (self.id.clone(), path.to_path_buf());
        move |source| StateError::Io { id, path, source }
    }

    /// Replaces state.json atomically (write a temporary file, rename it).
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let data = serde_json::to_vec(state).expect("state serializes");
        let path = self.path.join(STATE_FILE);
        crate::files::write_atomically(&path, &data).map_err(self.io_err(&path))
    }

    /// Whether state.json was written (a create that died early leaves
    /// the directory without it).
    pub fn has_state(&self) -> bool {
        self.path.join(STATE_FILE).exists()
    }

    pub fn load(&self) -> Result<State, StateError> {
        load_file(&self.id, &self.path)
    }

    /// Empties the directory (of a dead create taken over).
    pub fn clear(&self) -> Result<(), StateError> {
        for entry in fs::read_dir(&self.path).map_err(self.io_err(&self.path))? {
            let path = entry.map_err(self.io_err(&self.path))?.path();
            fs::remove_file(&path).map_err(self.io_err(&path))?;
        }
        Ok(())
    }

    /// Removes the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(self.io_err(&self.path)(e)),
            _ => {
                drop(self.lock);
                Ok(())
            }
        }
    }
}

/// Reads a container's state without taking its lock (the file is only
/// ever replaced by rename, so a reader sees an old or a new whole file).
pub fn load_file(id: &str, dir: &Path) -> Result<State, StateError> {
    let path = dir.join(STATE_FILE);
    let data = fs::read(&path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => StateError::NotExist(id.to_string()),
        _ => StateError::Io {
            id: id.to_string(),
            path,
            source,
        },
    })?;
    let state: State = serde_json::from_slice(&data).map_err(|source| StateError::Corrupt {
        id: id.to_string(),
        source,
    })?;
    Ok(State {
        dir: dir.to_path_buf(),
        ..state
    })
}

/// Ids of every container under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(root) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.map_err(|source| StateError::Io {
            id: String::new(),
            path: root.to_path_buf(),
            source,
        })?,
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| validate_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["a", "web-1", "9036f09c9c07", "x_y.z+1", &"a".repeat(255)] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_bad_ids() {
        let long = "a".repeat(256);
        for id in ["", ".", "..", "a/b", "../x", "a b", "é", long.as_str()] {
            let e = validate_id(id).unwrap_err().to_string();
            assert!(e.starts_with("invalid container id"), "{id}: {e}");
        }
    }

    fn record(phase: Phase) -> State {
        State {
            id: "c1".into(),
            pid: 1,
            pid_start: 2,
            phase,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            annotations: HashMap::new(),
            hooks: None,
            cgroup: None,
            scope: None,
            seccomp: None,
            memory_policy: None,
            dir: PathBuf::new(),
        }
    }

    fn test_root(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("berth-state-{name}-{}", std::process::id()))
    }

    #[test]
    fn create_twice_is_refused_and_remove_cleans_up() {
        let root = test_root("twice");
        let (dir, stale) = StateDir::create(&root, "c1").unwrap();
        assert!(stale.is_none());
        dir.save(&record(Phase::Created)).unwrap();
        assert_eq!(load_file("c1", &root.join("c1")).unwrap().pid_start, 2);
        // The second create waits for the first's lock: let it go first.
        drop(dir);
        assert!(matches!(
            StateDir::create(&root, "c1"),
            Err(StateError::Exists(_))
        ));
        assert_eq!(list_ids(&root).unwrap(), vec!["c1".to_string()]);
        let dir = StateDir::open(&root, "c1").unwrap();
        dir.remove().unwrap();
        assert!(matches!(
            StateDir::open(&root, "c1"),
            Err(StateError::NotExist(_))
        ));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_directory_of_a_dead_create_is_taken_over_with_its_record() {
        let root = test_root("dead");
        let (dir, _) = StateDir::create(&root, "c1").unwrap();
        drop(dir);
        let (dir, stale) = StateDir::create(&root, "c1").unwrap();
        assert!(stale.is_none(), "died before its first record");
        dir.save(&record(Phase::Creating)).unwrap();
        fs::write(dir.fifo_path(), "").unwrap();
        drop(dir);
        let (dir, stale) = StateDir::create(&root, "c1").unwrap();
        assert_eq!(stale.map(|s| s.phase), Some(Phase::Creating));
        dir.clear().unwrap();
        assert_eq!(fs::read_dir(&dir.path).unwrap().count(), 0);
        fs::remove_dir_all(&root).unwrap();
    }
}
