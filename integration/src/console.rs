//! The receiving end of `--console-socket`, like runc's `recvtty`: accept one
//! connection, take the pty master passed with SCM_RIGHTS, read it to the end.

use crate::exec::DEADLINE;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

pub struct ConsoleSocket {
    pub path: PathBuf,
    output: Receiver<String>,
}

impl ConsoleSocket {
    /// Listens at `path` and reads the terminal in the background.
    pub fn listen(path: &Path) -> ConsoleSocket {
        let listener = UnixListener::bind(path).expect("bind console socket");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept console connection");
            let _ = tx.send(read_terminal(receive_fd(&conn)));
        });
        ConsoleSocket {
            path: path.to_owned(),
            output,
        }
    }

    /// Everything the container wrote to its terminal, once it has exited,
    /// with the terminal's `\r\n` turned back into `\n`.
    #[track_caller]
    pub fn output(self) -> String {
        let text = self
            .output
            .recv_timeout(DEADLINE)
            .expect("the runtime never sent a pty master");
        text.replace("\r\n", "\n")
    }
}

/// Reads the master until the last slave closes (EIO on Linux).
fn read_terminal(master: OwnedFd) -> String {
    let mut master = File::from(master);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = master.read(&mut buf) {
        bytes.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn receive_fd(conn: &UnixStream) -> OwnedFd {
    let mut data = [0u8; 4096]; // runc sends the pty's name along with the fd
    let mut control = [0u64; 8]; // u64 for the alignment cmsghdr needs
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at live buffers of the lengths it states.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
    assert!(
        n >= 0,
        "recvmsg on console socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: recvmsg filled msg; CMSG_FIRSTHDR checks the control length.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS,
            "the console socket message carried no file descriptor"
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
        ))
    }
}
