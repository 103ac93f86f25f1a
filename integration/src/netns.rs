//! A named network namespace of the test process's own, for a host daemon
//! that needs a network (CRI's CNI bridge, Docker's bridge and iptables
//! rules) without touching the host's. A stack's jail has one already.

use crate::containerd::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct Netns {
    name: String,
    pub path: PathBuf,
}

impl Netns {
    /// A fresh namespace `PREFIX-PID` with `lo` up (published ports are
    /// reached from its loopback).
    pub(crate) fn new(prefix: &str) -> Result<Netns, String> {
        let name = format!("{prefix}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        for args in [
            vec!["netns", "add", &name],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    let stderr = String::from_utf8_lossy(&o.stderr);
                    return Err(format!("ip {args:?}: {stderr}"));
                }
                Err(e) => return Err(format!("ip {args:?}: {e}")),
            }
        }
        let path = Path::new("/run/netns").join(&name);
        Ok(Netns { name, path })
    }

    /// A daemon for the keeper to run first: it deletes the namespace when
    /// the keeper stops it (after the daemons that use it), so that the
    /// namespace outlives no test process.
    pub(crate) fn holder(&self) -> Daemon {
        let name = &self.name;
        let script =
            format!("trap 'ip netns delete {name}; exit 0' TERM; while :; do sleep 1; done");
        ("netns", format!("sh -c \"{script}\""))
    }

    /// The shell `command`, run in the namespace.
    pub(crate) fn enter(&self, command: &str) -> String {
        format!("nsenter --net='{}' {command}", self.path.display())
    }
}
