//! CVE-2019-5736: a container can reach the binary that sets it up, as
//! /proc/PID/exe of berth's processes inside it or as the interpreter of a
//! `#!/proc/self/exe` entrypoint, and write to it once berth has exited.
//! So the commands that start container processes run from a sealed
//! in-memory copy of berth: there is nothing on the host's disk to reach.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

#[derive(Debug, thiserror::Error)]
#[error("run from a sealed copy of berth: {what}: {source}")]
pub struct SealError {
    what: &'static str,
    source: std::io::Error,
}

fn err(what: &'static str) -> impl FnOnce(std::io::Error) -> SealError {
    move |source| SealError { what, source }
}

/// Whether `f` is a memfd that can no longer be written.
fn is_sealed(f: &File) -> bool {
    // SAFETY: F_GET_SEALS takes no argument; on a file without seals
    // (a regular file) it fails with EINVAL.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Returns at once when berth already runs from a sealed copy; otherwise
/// makes one and re-executes it with the same arguments and environment
/// (and returns only on failure).
pub fn ensure() -> Result<(), SealError> {
    let mut exe = File::open("/proc/self/exe").map_err(err("open /proc/self/exe"))?;
    if is_sealed(&exe) {
        return Ok(());
    }
    // SAFETY: memfd_create takes a NUL-terminated name and flags and
    // returns a new fd or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"berth".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(err("memfd_create")(std::io::Error::last_os_error()));
    }
    // SAFETY: the fd was just created and nothing else owns it.
    let mut copy = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut exe, &mut copy).map_err(err("copy the binary"))?;
    // SAFETY: F_ADD_SEALS takes an int of seal bits.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(err("seal the copy")(std::io::Error::last_os_error()));
    }
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
    let e = nix::unistd::fexecve(&copy, &args, &env).unwrap_err();
    Err(err("fexecve")(std::io::Error::from(e)))
}
