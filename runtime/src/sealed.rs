//! CVE-2019-5736: a container can reach the binary that sets it up, as
//! /proc/PID/exe of berth's processes inside it or as the interpreter of a
//! `#!/proc/self/exe` entrypoint, and write to it once berth has exited.
//! So the commands that start container processes re-execute berth from a
//! file nothing can write: the binary seen through a detached, read-only
//! overlayfs mount of its directory (no copy: the pages are the binary's
//! own), or, where the kernel cannot make one, a sealed in-memory copy.

use crate::error::{Context, OsError};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

#[derive(Debug, thiserror::Error)]
#[error("run from a read-only copy of berth: {0}")]
pub struct SealError(#[from] OsError);

/// Whether `f` is a memfd that can no longer be written.
fn is_sealed(f: &File) -> bool {
    // SAFETY: F_GET_SEALS takes no argument; on a file without seals
    // (a regular file) it fails with EINVAL.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Whether `f` lives on a read-only mount: berth's own overlay view, or
/// a binary installed read-only, which a container cannot write either.
fn on_read_only_mount(f: &File) -> bool {
    nix::sys::statvfs::fstatvfs(f)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Returns at once when berth already runs from a file nothing can write;
/// otherwise re-executes itself from one with the same arguments and
/// environment (and returns only on failure).
pub fn ensure() -> Result<(), SealError> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    if is_sealed(&exe) || on_read_only_mount(&exe) {
        return Ok(());
    }
    let target = match read_only_view() {
        Ok(view) => view,
        Err(_) => sealed_copy(exe)?,
    };
    let cstrings = |items: Vec<Vec<u8>>| -> Vec<CString> {
        items
            .into_iter()
            .filter_map(|s| CString::new(s).ok())
            .collect()
    };
    use std::os::unix::ffi::OsStringExt;
    let args = cstrings(std::env::args_os().map(|a| a.into_vec()).collect());
    let env = cstrings(
        std::env::vars_os()
            .map(|(k, v)| [k.into_vec(), b"=".to_vec(), v.into_vec()].concat())
            .collect(),
    );
    let e = nix::unistd::fexecve(&target, &args, &env).unwrap_err();
    Err(OsError::new("fexecve", std::io::Error::from(e)).into())
}

/// The binary opened through a read-only overlayfs of its directory, a
/// mount attached nowhere: no mount namespace has it, so nobody can make
/// it writable, and a write through /proc/PID/exe fails with EROFS.
/// overlayfs without an upper layer needs two lower ones: the second is
/// an empty tmpfs, detached as well.
fn read_only_view() -> std::io::Result<File> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(std::io::ErrorKind::NotFound.into());
    };
    let empty = detached_mount("tmpfs", &[])?;
    let empty_path = format!("/proc/self/fd/{}", empty.as_raw_fd());
    let lower = format!("{}:{empty_path}", dir.display());
    let view = detached_mount("overlay", &[("lowerdir", lower.as_str())])?;
    let file = nix::fcntl::openat(
        &view,
        Path::new(name),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(File::from(file))
}

/// A new read-only `fstype` mount with `options`, attached nowhere
/// (fsopen, fsconfig, fsmount: Linux 5.2 and later).
fn detached_mount(fstype: &str, options: &[(&str, &str)]) -> std::io::Result<OwnedFd> {
    let c = |s: &str| CString::new(s).map_err(|_| std::io::ErrorKind::InvalidInput);
    let fstype = c(fstype)?;
    // SAFETY: fsopen takes a NUL-terminated name and flags, returns an fd.
    let fs =
        owned(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    for (key, value) in options {
        let (key, value) = (c(key)?, c(value)?);
        // SAFETY: fsconfig reads the two NUL-terminated strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        nix::errno::Errno::result(rc)?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    nix::errno::Errno::result(rc)?;
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
    // SAFETY: fsmount takes the configured fs fd, flags and attributes.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    })
}

fn owned(rc: libc::c_long) -> std::io::Result<OwnedFd> {
    let fd = nix::errno::Errno::result(rc)? as RawFd;
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An in-memory copy of the binary, sealed against writes.
fn sealed_copy(mut exe: File) -> Result<File, SealError> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags and
    // returns a new fd or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"berth".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    let mut copy = File::from(owned(fd as libc::c_long).context("memfd_create")?);
    std::io::copy(&mut exe, &mut copy).context("copy the binary")?;
    // SAFETY: F_ADD_SEALS takes an int of seal bits.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(OsError::new("seal the copy", std::io::Error::last_os_error()).into());
    }
    Ok(copy)
}

/// What this process runs from, for `--debug`; None for a binary
/// installed read-only.
pub fn describe() -> Option<&'static str> {
    let exe = File::open("/proc/self/exe").ok()?;
    let on_overlay = nix::sys::statfs::fstatfs(&exe)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    if is_sealed(&exe) {
        Some("running from a sealed in-memory copy of the binary")
    } else if on_overlay && on_read_only_mount(&exe) {
        Some("running from a read-only overlayfs view of the binary")
    } else {
        None
    }
}
