//! `berth run`: create, start and (unless detached) wait for a container,
//! forwarding signals to it and, for a terminal without a console socket,
//! relaying the terminal through berth's own stdio.

use super::create::CommonOpts;
use berth::container;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub opts: CommonOpts,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Container id
    pub id: String,
}

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

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    // Without --console-socket berth receives the terminal itself.
    let (ours, theirs) = match (a.detach, &a.opts.console_socket) {
        (false, None) => {
            let (o, t) = UnixStream::pair()?;
            (Some(o), Some(t))
        }
        _ => (None, None),
    };
    let state = container::create(&a.opts.to_create(root, &a.id), theirs)?;
    let mut mask = SigSet::empty();
    FORWARDED.iter().for_each(|s| mask.add(*s));
    mask.thread_block()?;
    // The master arrives before create returns, if the spec asked for a tty.
    let relay = match ours {
        Some(sock) => {
            sock.set_nonblocking(true)?;
            berth::tty::recv_fd(&sock)
                .ok()
                .map(super::relay::Relay::start)
                .transpose()?
        }
        None => None,
    };
    if let Err(e) = container::start(root, &a.id) {
        let _ = container::delete(root, &a.id, true);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait(state.pid, &mask, relay.as_ref())?;
    if let Some(r) = relay {
        r.finish();
    }
    if !a.keep {
        container::delete(root, &a.id, true)?;
    }
    Ok(code)
}

/// Forwards signals to init until it exits; returns its exit code (128+n
/// when a signal killed it). Orphans reparented to berth are reaped too.
fn wait(init: i32, mask: &SigSet, relay: Option<&super::relay::Relay>) -> anyhow::Result<i32> {
    loop {
        if let Some(code) = reap(init) {
            return Ok(code);
        }
        match mask.wait()? {
            Signal::SIGCHLD => continue,
            Signal::SIGWINCH => {
                if let Some(r) = relay {
                    r.resize();
                }
            }
            sig => {
                let _ = kill(Pid::from_raw(init), sig);
            }
        }
    }
}

fn reap(init: i32) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
