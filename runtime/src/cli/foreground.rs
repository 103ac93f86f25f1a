//! Waiting for a container process in the foreground (`run`, `exec`):
//! signals berth receives go to the process, a terminal without
//! `--console-socket` is relayed through berth's stdio, and berth exits
//! with the process's status.

use super::relay::Relay;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Without `--console-socket` and in the foreground berth receives the
/// terminal itself: (berth's end, the end handed to the container).
pub fn console_pair(
    detach: bool,
    console_socket: &Option<PathBuf>,
) -> std::io::Result<(Option<UnixStream>, Option<UnixStream>)> {
    if detach || console_socket.is_some() {
        return Ok((None, None));
    }
    let (ours, theirs) = UnixStream::pair()?;
    Ok((Some(ours), Some(theirs)))
}

pub struct Foreground {
    mask: SigSet,
    relay: Option<Relay>,
}

impl Foreground {
    /// Called once the process exists: blocks the forwarded signals (so
    /// none is lost before `wait`) and starts the relay if a terminal
    /// master arrived on `ours` (it is sent before the process is ready).
    pub fn attach(ours: Option<UnixStream>) -> anyhow::Result<Foreground> {
        let mut mask = SigSet::empty();
        FORWARDED.iter().for_each(|s| mask.add(*s));
        mask.thread_block()?;
        let relay = match ours {
            Some(sock) => {
                sock.set_nonblocking(true)?;
                berth::tty::recv_fd(&sock)
                    .ok()
                    .map(Relay::start)
                    .transpose()?
            }
            None => None,
        };
        Ok(Foreground { mask, relay })
    }

    /// Forwards signals to `pid` until it exits; returns its exit code
    /// (128+n when signal n killed it). Orphans reparented to berth are
    /// reaped on the way.
    pub fn wait(self, pid: i32) -> anyhow::Result<i32> {
        let code = loop {
            if let Some(code) = reap(pid) {
                break code;
            }
            match self.mask.wait()? {
                Signal::SIGCHLD => {}
                Signal::SIGWINCH => {
                    if let Some(r) = &self.relay {
                        r.resize();
                    }
                }
                sig => {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
        };
        if let Some(r) = self.relay {
            r.finish();
        }
        Ok(code)
    }
}

fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
