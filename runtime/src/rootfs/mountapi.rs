//! The kernel's newer mount calls, which nix does not wrap: attributes
//! set on a whole mount tree at once (mount_setattr), and bind mounts
//! carried by a descriptor (open_tree, move_mount).

use super::options::RecAttr;
use nix::mount::MsFlags;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> nix::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| nix::errno::Errno::EINVAL)
}

/// Applies `attr` to the mount at `at` and every mount below it.
pub fn set_recursive(at: &Path, attr: RecAttr) -> nix::Result<()> {
    let arg = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(
        libc::AT_FDCWD,
        &cpath(at)?,
        libc::AT_RECURSIVE as libc::c_uint,
        &arg,
    )
}

/// Idmaps the detached tree `tree` with the mappings of user namespace
/// `userns`: its top mount, or every mount with `recursive`.
pub fn idmap(tree: &OwnedFd, userns: &OwnedFd, recursive: bool) -> nix::Result<()> {
    let arg = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    setattr(tree.as_raw_fd(), c"", flags, &arg)
}

/// mount_setattr(2) on the tree at `path` from `dirfd` (recursively with
/// AT_RECURSIVE in `flags`).
fn setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    arg: &libc::mount_attr,
) -> nix::Result<()> {
    // SAFETY: path is NUL-terminated and arg a mount_attr whose size is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            arg as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// A detached copy of the mount tree at `src` (only its top mount unless
/// `recursive`), to be attached later with [`attach`] in another mount
/// namespace, where `src` may not be reachable. Its mounts get
/// `propagation`, the container tree's own.
pub fn clone_tree(src: &Path, recursive: bool, propagation: MsFlags) -> nix::Result<OwnedFd> {
    let flags = match recursive {
        true => libc::AT_RECURSIVE as libc::c_uint,
        false => 0,
    };
    let tree = open_tree(libc::AT_FDCWD, &cpath(src)?, flags)?;
    // A clone of a shared mount joins the source's peer group: left so,
    // every mount the container made below it would appear on the host,
    // whatever the container's propagation. A bind made by path inside the
    // container's namespace gets that propagation from its source.
    let attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: propagation.bits(),
        userns_fd: 0,
    };
    let flags = (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint;
    setattr(tree.as_raw_fd(), c"", flags, &attr)?;
    Ok(tree)
}

/// Bind-mounts the file `src` is open on onto the one `dest` is open on:
/// no path is looked up again, so nothing swapped in meanwhile is bound
/// or covered instead.
pub fn bind_file(src: &impl AsRawFd, dest: &impl AsRawFd) -> nix::Result<()> {
    match open_tree(src.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint) {
        Ok(tree) => move_mount(&tree, dest.as_raw_fd(), c"", libc::MOVE_MOUNT_T_EMPTY_PATH),
        // Kernels before 5.2: the magic links name the same files.
        Err(nix::errno::Errno::ENOSYS) => nix::mount::mount(
            Some(format!("/proc/self/fd/{}", src.as_raw_fd()).as_str()),
            format!("/proc/self/fd/{}", dest.as_raw_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
        Err(e) => Err(e),
    }
}

fn open_tree(dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> nix::Result<OwnedFd> {
    let flags = flags | libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: path is NUL-terminated; open_tree returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    nix::errno::Errno::result(fd)?;
    // SAFETY: the descriptor was just made by open_tree and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the tree `tree` (from [`clone_tree`]) at `dest`.
pub fn attach(tree: &OwnedFd, dest: &Path) -> nix::Result<()> {
    // `dest` may be a /proc/self/fd magic link: follow it, as mount(2) does.
    move_mount(
        tree,
        libc::AT_FDCWD,
        &cpath(dest)?,
        libc::MOVE_MOUNT_T_SYMLINKS,
    )
}

fn move_mount(tree: &OwnedFd, to_dirfd: RawFd, to: &CStr, flags: libc::c_uint) -> nix::Result<()> {
    let empty = c"";
    // SAFETY: both paths are NUL-terminated; tree and to_dirfd are open descriptors
    // (or AT_FDCWD).
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            to_dirfd,
            to.as_ptr(),
            flags | libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}
