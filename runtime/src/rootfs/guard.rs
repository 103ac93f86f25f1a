//! What may be mounted where: the destinations runc refuses, so that a
//! config or an image cannot put the kernel's files where they do not
//! belong, or hide them behind something else.

use super::{path, RootfsError};
use std::path::Path;

/// runc's rule: proc and sysfs go on a directory of the image, never
/// where a symlink there points (an image with `/proc -> /elsewhere`
/// would get the kernel's files at a path the spec did not name).
pub fn check_ordinary_dir(rootfs: &Path, destination: &Path, typ: &str) -> Result<(), RootfsError> {
    if typ != "proc" && typ != "sysfs" {
        return Ok(());
    }
    let parent = path::secure_join(rootfs, destination.parent().unwrap_or(Path::new("/")))?;
    let last = parent.join(destination.file_name().unwrap_or_default());
    match last.symlink_metadata() {
        Ok(meta) if !meta.is_dir() => Err(RootfsError::Refused {
            dest: destination.to_path_buf(),
            why: "proc and sysfs must be mounted on ordinary directory, not a symlink or a file",
        }),
        _ => Ok(()),
    }
}

/// Files inside /proc that may be mounted over (as lxcfs does), as runc
/// allows.
const PROC_MOUNTABLE: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// runc's answer to CVE-2019-16884: /proc is a procfs (mounted, or bound
/// from one), and inside it only a few informational files may be covered:
/// a writable /proc/sys or a fake /proc/self/attr would undo the
/// container's protections. `inside` is the destination as resolved in
/// the rootfs, so a symlink to /proc counts as /proc.
pub fn check_proc(inside: &Path, typ: &str, bind_source: Option<&Path>) -> Result<(), RootfsError> {
    let refuse = |why| {
        Err(RootfsError::Refused {
            dest: inside.to_path_buf(),
            why,
        })
    };
    if inside == Path::new("/proc") {
        let procfs = |p: &Path| {
            nix::sys::statfs::statfs(p)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        };
        if typ != "proc" && !bind_source.is_some_and(procfs) {
            return refuse("/proc can only be a proc filesystem");
        }
    } else if inside.starts_with("/proc") && !PROC_MOUNTABLE.iter().any(|p| inside == Path::new(p))
    {
        return refuse("is inside /proc, where only a few informational files may be mounted over");
    }
    Ok(())
}
