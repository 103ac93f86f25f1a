//! `--no-pivot` keeps the old root in the container's mount namespace,
//! under the rootfs moved onto it. The kernel lets a process in a new
//! user and pid namespace mount a procfs or sysfs only where a full one
//! without covered parts is already mounted in its mount namespace: the
//! host's /proc and /sys, left there, would let the container mount a
//! procfs without its masks (`unshare -mrpf`, then `mount -t proc`). So
//! every full proc and sysfs outside the rootfs goes before the move.

use super::{mount_err, mountinfo, RootfsError};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

/// Detaches every full proc and sysfs mount outside `rootfs`.
pub fn detach_outside(rootfs: &Path) -> Result<(), RootfsError> {
    let text = super::own_mountinfo()?;
    let real = rootfs
        .canonicalize()
        .unwrap_or_else(|_| rootfs.to_path_buf());
    // Children before parents, and of mounts stacked on one point the top
    // first, so that each one is still reachable by its path.
    for e in mountinfo::all(&text).iter().rev() {
        let full = e.root == "/" && (e.fs_type == "proc" || e.fs_type == "sysfs");
        if full && !Path::new(&e.mount_point).starts_with(&real) {
            detach(Path::new(&e.mount_point))?;
        }
    }
    Ok(())
}

fn detach(at: &Path) -> Result<(), RootfsError> {
    // The unmount must not propagate to the host's mount of it.
    match mount(
        None::<&str>,
        at,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    ) {
        // Gone with a parent detached before it.
        Err(Errno::ENOENT) => return Ok(()),
        r => r.map_err(mount_err("", at, "slave"))?,
    }
    match umount2(at, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        // Locked (a user namespace's copy of the host's mount) or not
        // allowed: cover it instead, which the kernel's check counts as
        // hidden.
        Err(Errno::EINVAL | Errno::EPERM) => mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(mount_err("tmpfs", at, "tmpfs")),
        Err(e) => Err(mount_err("", at, "detach")(e)),
    }
}
