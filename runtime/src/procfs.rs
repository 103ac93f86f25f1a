//! Writes to procfs that the container cannot redirect (CVE-2025-52881).
//!
//! berth writes procfs files after the container's mounts are in place:
//! sysctls and LSM labels in init, labels again in every `exec`. A mount
//! the container controls (a bind over `/proc/sys/...` or over
//! `/proc/self/attr`) would turn such a write by path into a write to a
//! file of the attacker's choosing, such as the host's `core_pattern`
//! bound in from elsewhere. So each write starts from `/proc` opened once
//! and checked to be the root of a procfs, and goes through `openat2`
//! with no link followed and no mount crossed; `self` and `thread-self`
//! are read from that procfs, as it numbers this process.

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// procfs's root directory has this inode number on every kernel.
const PROC_ROOT_INO: u64 = 1;

/// `/proc`, checked to be the root of a procfs.
pub struct Procfs {
    root: OwnedFd,
}

impl Procfs {
    pub fn open() -> std::io::Result<Procfs> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let root = nix::fcntl::open("/proc", flags, Mode::empty())?;
        let is_proc = nix::sys::statfs::fstatfs(&root)?.filesystem_type()
            == nix::sys::statfs::PROC_SUPER_MAGIC;
        if !is_proc || nix::sys::stat::fstat(&root)?.st_ino != PROC_ROOT_INO {
            return Err(std::io::Error::other("/proc is not the root of a procfs"));
        }
        Ok(Procfs { root })
    }

    /// Writes `data` to `file`, a path below /proc whose first component
    /// may be `self` or `thread-self`, in one write(2) as the kernel's
    /// files want it.
    pub fn write(&self, file: &str, data: &[u8]) -> std::io::Result<()> {
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = match openat2(&self.root, &self.resolve(file)?, how) {
            Err(Errno::EXDEV) => {
                return Err(std::io::Error::other(format!(
                    "/proc/{file} is under a mount of its own, not procfs's file"
                )))
            }
            r => r?,
        };
        std::fs::File::from(fd).write_all(data)
    }

    /// `file` with `self` or `thread-self` replaced by what they link to.
    fn resolve(&self, file: &str) -> std::io::Result<PathBuf> {
        let (first, rest) = file.split_once('/').unwrap_or((file, ""));
        match first {
            "self" | "thread-self" => Ok(PathBuf::from(readlinkat(&self.root, first)?).join(rest)),
            _ => Ok(PathBuf::from(file)),
        }
    }

    /// Writes `data` to `file` of the procfs at /proc.
    pub fn write_once(file: &str, data: &[u8]) -> std::io::Result<()> {
        Procfs::open()?.write(file, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_this_process_as_the_procfs_numbers_it() {
        let proc = Procfs::open().unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(
            proc.resolve("self/attr/exec").unwrap(),
            PathBuf::from(pid).join("attr/exec")
        );
        let tid = proc.resolve("thread-self/comm").unwrap();
        assert!(tid.to_str().unwrap().contains("/task/"), "{tid:?}");
    }

    #[test]
    fn a_write_reaches_this_process() {
        let before = std::fs::read_to_string("/proc/self/comm").unwrap();
        Procfs::write_once("thread-self/comm", b"berth-proc-test").unwrap();
        let after = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
        Procfs::write_once("thread-self/comm", before.trim().as_bytes()).unwrap();
        assert_eq!(after.trim(), "berth-proc-test");
    }

    #[test]
    fn a_link_in_the_path_is_refused() {
        // /proc/self/cwd is a magic link out of procfs.
        let e = Procfs::write_once("self/cwd/x", b"1").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    }
}
