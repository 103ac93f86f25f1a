//! Reading a container's cgroup files from the host, on either cgroup
//! version, so one scenario checks a limit wherever the kernel keeps it.

use std::path::{Path, PathBuf};

/// Whether the host is a pure cgroup v2 host.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup a process is in, as `/proc/PID/cgroup` names it.
pub struct CgroupOf {
    lines: String,
}

impl CgroupOf {
    #[track_caller]
    pub fn pid(pid: i64) -> CgroupOf {
        let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/cgroup: {e}"));
        CgroupOf { lines }
    }

    /// The directory of `controller` (v1; ignored on v2).
    #[track_caller]
    pub fn dir(&self, controller: &str) -> PathBuf {
        let found = self.lines.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, names, path) = (f.next()?, f.next()?, f.next()?);
            let ours = match unified() {
                true => names.is_empty(),
                false => names.split(',').any(|n| n == controller),
            };
            ours.then_some((names, path))
        });
        let (names, path) = found.unwrap_or_else(|| panic!("no {controller} in {}", self.lines));
        let mount = if unified() {
            String::new()
        } else {
            format!("/{names}")
        };
        PathBuf::from(format!("/sys/fs/cgroup{mount}{path}"))
    }

    /// The trimmed content of a cgroup file: `v1` is (controller, file),
    /// `v2` the file of the unified hierarchy.
    #[track_caller]
    pub fn read(&self, v1: (&str, &str), v2: &str) -> String {
        let file = match unified() {
            true => self.dir("").join(v2),
            false => self.dir(v1.0).join(v1.1),
        };
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
            .trim()
            .to_owned()
    }
}
