//! Terminals: the runtime sends the pty master over `--console-socket`
//! (as runc does); the shim copies the client's stdin FIFO into it and its
//! output into the stdout FIFO, and resizes it on ResizePty.

use crate::io::{self, Held, IoError, StdioPaths};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
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
        berth::tty::recv_fd(&conn)
            .map(File::from)
            .map_err(|_| TtyError::NoMaster)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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
        berth::tty::set_size(self.master.as_raw_fd(), height as u16, width as u16)
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
