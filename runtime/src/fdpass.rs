//! Passing a descriptor with a message over a unix socket (SCM_RIGHTS):
//! the sync channel between berth and the container's side, a console
//! socket's pty master, the seccomp agent's notification fd.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Sends `payload`, with `fd` attached when there is one; returns how much
/// of it went (a stream may take less). A peer that is gone gives EPIPE,
/// never SIGPIPE.
pub fn send(sock: impl AsFd, payload: &[u8], fd: Option<RawFd>) -> nix::Result<usize> {
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsgs: &[ControlMessage] = match fds.is_empty() {
        true => &[],
        false => &[ControlMessage::ScmRights(&fds)],
    };
    let iov = [IoSlice::new(payload)];
    let flags = MsgFlags::MSG_NOSIGNAL;
    sendmsg::<()>(sock.as_fd().as_raw_fd(), &iov, cmsgs, flags, None)
}

/// Receives one message into `buf`: its length, and the first fd it
/// carried (close-on-exec) if any.
pub fn recv(sock: impl AsFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let flags = MsgFlags::MSG_CMSG_CLOEXEC;
        match recvmsg::<()>(sock.as_fd().as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => {
                let fd = m.cmsgs()?.find_map(|c| match c {
                    ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                    _ => None,
                });
                // SAFETY: SCM_RIGHTS gave this process a new fd that nothing owns.
                return Ok((m.bytes, fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })));
            }
        }
    }
}

/// Hands a pidfd of process `pid` to whoever listens at `socket`
/// (`--pidfd-socket`): a supervisor can then signal it without racing pid
/// reuse.
pub fn send_pidfd(socket: &std::path::Path, pid: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = nix::errno::Errno::result(fd)?;
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let conn = std::os::unix::net::UnixStream::connect(socket)?;
    send(&conn, b"pidfd", Some(pidfd.as_raw_fd()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_arrives_with_its_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        send(&a, b"hello", Some(file.as_raw_fd())).unwrap();
        let mut buf = [0u8; 16];
        let (n, fd) = recv(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let fd = fd.expect("an fd came along");
        let same = |f: &dyn AsRawFd| std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()));
        assert_eq!(same(&fd).unwrap(), same(&file).unwrap());
        send(&a, b"bare", None).unwrap();
        assert!(recv(&b, &mut buf).unwrap().1.is_none());
    }
}
