//! Terminals: the runtime sends the pty master over `--console-socket`
//! (as runc does); the shim copies the client's stdin FIFO into it and its
//! output into the stdout FIFO, and resizes it on ResizePty.

use crate::io::{self, Held, IoError, StdioPaths};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the runtime has, after `create`/`exec` returned, to have sent
/// the master (it sends it before it returns).
const SEND_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("console socket {0}: {1}")]
    Socket(String, std::io::Error),
    #[error("the runtime sent no pty master")]
    NoMaster,
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A listening `--console-socket`, removed when dropped.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket, TtyError> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("berth-shim-pty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let err = |e| TtyError::Socket(path.display().to_string(), e);
        let listener = UnixListener::bind(&path).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The master the runtime sent.
    pub fn receive(&self) -> Result<File, TtyError> {
        let start = Instant::now();
        let conn = loop {
            match self.listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if start.elapsed() < SEND_DEADLINE => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => return Err(TtyError::NoMaster),
            }
        };
        conn.set_nonblocking(false)
            .map_err(|e| TtyError::Socket(self.path.display().to_string(), e))?;
        receive_fd(&conn).map(File::from).ok_or(TtyError::NoMaster)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn receive_fd(conn: &UnixStream) -> Option<OwnedFd> {
    let mut buf = [0u8; 4096]; // runc sends the pty's name along
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .ok()?;
    let fd = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    })?;
    // SAFETY: SCM_RIGHTS just gave us this fd; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A process's terminal, with the threads that copy to and from it.
pub struct Console {
    master: File,
    output: Option<JoinHandle<()>>,
}

impl Console {
    /// Starts copying between `master` and the process's stdio FIFOs; what
    /// the shim keeps of them goes into `held`.
    pub fn start(
        master: File,
        paths: &StdioPaths,
        owner: &io::Owner,
        held: &mut Held,
    ) -> Result<Console, TtyError> {
        let plain = StdioPaths {
            terminal: false,
            stderr: String::new(),
            ..paths.clone()
        };
        let (ends, kept) = io::open(&plain, owner)?;
        *held = kept;
        if let Some(stdin) = ends.stdin {
            copy(stdin, master.try_clone().map_err(no_master)?);
        }
        let output = match ends.stdout {
            Some(stdout) => Some(copy(master.try_clone().map_err(no_master)?, stdout)),
            None => None,
        };
        Ok(Console { master, output })
    }

    pub fn resize(&self, width: u32, height: u32) -> nix::Result<()> {
        let size = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is valid.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        nix::errno::Errno::result(r).map(drop)
    }

    /// Waits until all the process wrote has reached the stdout FIFO (the
    /// master reads EIO once the last slave closes).
    pub fn drain(&mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.join();
        }
    }
}

fn no_master(_: std::io::Error) -> TtyError {
    TtyError::NoMaster
}

fn copy(mut from: File, mut to: File) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
    })
}
