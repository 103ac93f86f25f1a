//! The kernel's newer mount calls, which nix does not wrap: attributes
//! set on a whole mount tree at once (mount_setattr).

use super::options::RecAttr;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> nix::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| nix::errno::Errno::EINVAL)
}

/// Applies `attr` to the mount at `at` and every mount below it.
pub fn set_recursive(at: &Path, attr: RecAttr) -> nix::Result<()> {
    let path = cpath(at)?;
    let arg = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is NUL-terminated and arg a mount_attr whose size is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &arg as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}
