//! Relaying a container's terminal through berth's stdio for `run`
//! without `--console-socket`: stdin to the pty master, master to stdout,
//! with berth's own terminal in raw mode meanwhile.

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;

pub struct Relay {
    master: File,
    saved: Option<Termios>,
    output: JoinHandle<()>,
}

impl Relay {
    pub fn start(master: OwnedFd) -> std::io::Result<Relay> {
        let master = File::from(master);
        clear_onlcr(&master);
        let saved = tcgetattr(std::io::stdin()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw);
        }
        let relay_in = master.try_clone()?;
        std::thread::spawn(move || copy(std::io::stdin(), relay_in));
        let from = master.try_clone()?;
        let output = std::thread::spawn(move || copy(from, std::io::stdout()));
        let r = Relay {
            master,
            saved,
            output,
        };
        r.resize();
        Ok(r)
    }

    /// Gives the container's terminal the size of berth's own.
    pub fn resize(&self) {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize struct we own.
        if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
            let _ = berth::tty::set_size(self.master.as_raw_fd(), ws.ws_row, ws.ws_col);
        }
    }

    /// Waits for the container's last output, then restores the terminal.
    pub fn finish(self) {
        drop(self.master);
        let _ = self.output.join();
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

/// The container's "\n" reaches berth's stdout as written, as with runc,
/// which clears ONLCR too: a script capturing the output of a terminal
/// container sees no "\r" added per line.
fn clear_onlcr(master: &File) {
    if let Ok(mut t) = tcgetattr(master) {
        t.output_flags.remove(OutputFlags::ONLCR);
        let _ = tcsetattr(master, SetArg::TCSANOW, &t);
    }
}

fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
            break;
        }
    }
}
