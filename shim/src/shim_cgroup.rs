//! The `ShimCgroup` option: the serving shim runs in that cgroup, as
//! containerd's runc shim puts it there when `start` spawns it, so that
//! the shim's memory and CPU are charged where the operator said (CRI sets
//! it to the pod's cgroup). On v1 it joins every hierarchy where the
//! cgroup exists; on v2 the unified one.

use berth::cgroups::Cgroup;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ShimCgroupError {
    #[error("shim cgroup {0}: no such cgroup in any hierarchy")]
    Missing(String),
    #[error("join shim cgroup: write {0}: {1}")]
    Join(PathBuf, std::io::Error),
}

/// Moves `pid` into the cgroup `path` (relative to the hierarchies' roots).
pub fn join(pid: u32, path: &str) -> Result<(), ShimCgroupError> {
    let files = Cgroup::new(PathBuf::from(path)).procs_files();
    join_files(pid, path, &files)
}

fn join_files(pid: u32, path: &str, procs: &[PathBuf]) -> Result<(), ShimCgroupError> {
    let existing: Vec<&Path> = procs
        .iter()
        .map(PathBuf::as_path)
        .filter(|f| f.exists())
        .collect();
    if existing.is_empty() {
        return Err(ShimCgroupError::Missing(path.to_owned()));
    }
    for file in existing {
        std::fs::write(file, pid.to_string())
            .map_err(|e| ShimCgroupError::Join(file.to_owned(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_goes_where_the_cgroup_exists() {
        let dir = std::env::temp_dir().join(format!("berth-shim-cg-{}", std::process::id()));
        let (cpu, memory) = (dir.join("cpu/x"), dir.join("memory/x"));
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("cgroup.procs"), "").unwrap();
        let files = [cpu.join("cgroup.procs"), memory.join("cgroup.procs")];
        join_files(42, "/x", &files).unwrap();
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "42");
        assert!(!memory.exists(), "a hierarchy without it is left alone");
        let err = join_files(42, "/y", &files[1..]).unwrap_err();
        assert!(err.to_string().contains("/y"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
