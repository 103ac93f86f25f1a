//! How the container is confined to its rootfs: pivot_root, the rootfs
//! moved onto `/` (`--no-pivot`), or chroot alone (no mount namespace).

use super::{hostfs, RootfsError};
use crate::error::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

/// How the container's process is confined to its rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jail {
    /// pivot_root in the container's mount namespace.
    Pivot,
    /// `--no-pivot`: the rootfs moved onto `/` of the container's mount
    /// namespace, then chroot.
    MoveRoot,
    /// No mount namespace in the config: the mount table is the caller's,
    /// so nothing is mounted and nothing is pivoted, only chroot (as runc
    /// jails it; spec validation refuses what would need a mount).
    Chroot,
}

impl Jail {
    pub fn new(mount_ns: bool, no_pivot: bool) -> Jail {
        match (mount_ns, no_pivot) {
            (false, _) => Jail::Chroot,
            (true, true) => Jail::MoveRoot,
            (true, false) => Jail::Pivot,
        }
    }
}

/// Makes `rootfs` the container's `/`, as `jail` says.
pub fn pivot(rootfs: &Path, jail: Jail) -> Result<(), RootfsError> {
    nix::unistd::chdir(rootfs).context("chdir to the rootfs")?;
    match jail {
        Jail::Pivot => pivot_root()?,
        Jail::MoveRoot => {
            hostfs::detach_outside(rootfs)?;
            mount(
                Some(rootfs),
                "/",
                None::<&str>,
                MsFlags::MS_MOVE,
                None::<&str>,
            )
            .context("move the rootfs to /")?
        }
        Jail::Chroot => {}
    }
    if jail != Jail::Pivot {
        nix::unistd::chroot(".").context("chroot")?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// pivot_root into the current directory, the old root detached.
fn pivot_root() -> Result<(), RootfsError> {
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    nix::unistd::fchdir(&old).context("fchdir to the old root")?;
    // The old root may be shared with the host: detach it without
    // propagating the unmount there.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    Ok(())
}
