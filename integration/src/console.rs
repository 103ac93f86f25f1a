//! The receiving end of `--console-socket`, like runc's `recvtty`: accept one
//! connection, take the pty master passed with SCM_RIGHTS, read it to the end.

use crate::exec::{receive_fd, Out, DEADLINE};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
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
            // runc sends the pty's name along with the fd.
            let (_, master) = receive_fd(&conn, &mut [0u8; 4096], "the console socket");
            let _ = tx.send(read_terminal(master));
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

/// Runs `argv` in a terminal of `rows` × `cols` that script(1) makes (a
/// client's `-t` wants a terminal of its own), with output files in
/// `logs`. Its stdout is what the terminal showed, without the carriage
/// returns that each terminal on the way adds.
pub fn in_terminal(argv: &[String], (rows, cols): (u16, u16), logs: &Path) -> Out {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let line = format!("stty rows {rows} cols {cols}; {}", quoted.join(" "));
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    let mut out = crate::exec::run(&mut script, logs);
    // Now and then a NUL reaches the session's input (script(1) passing on
    // the end of its empty stdin, it seems; seen with containerd's shim and
    // berth's alike), and the container's terminal echoes it as `^@`
    // wherever it lands in the output.
    out.stdout = out.stdout.replace('\r', "").replace("^@", "");
    out
}
