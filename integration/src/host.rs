//! Host-side fixtures: persistent namespaces for containers to join.

use crate::bundle::{s, Bundle};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A namespace kept alive by a bind mount on a file (`unshare --net=FILE`),
/// for `linux.namespaces[].path`; unmounted on drop.
pub struct NsFile {
    pub path: PathBuf,
}

impl NsFile {
    /// A new namespace of `kind` (an `unshare` option: net, ipc, uts, ...),
    /// kept beside the test directory so its mount is not a leftover.
    pub fn new(bundle: &Bundle, kind: &str) -> NsFile {
        let path = PathBuf::from(format!("{}.{kind}", s(&bundle.dir)));
        std::fs::write(&path, "").expect("create namespace file");
        let status = Command::new("unshare")
            .arg(format!("--{kind}={}", s(&path)))
            .arg("true")
            .status();
        assert!(status.expect("run unshare").success(), "unshare --{kind}");
        NsFile { path }
    }
}

impl Drop for NsFile {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(s(&self.path)).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The inode that identifies the namespace at `path` (a /proc/PID/ns link
/// or a bind-mounted namespace file), as `readlink` prints it: `net:[N]`.
pub fn ns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat namespace").ino()
}
