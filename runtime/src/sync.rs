//! Messages between `berth create` and the container's init while it is
//! being set up, over a SOCK_SEQPACKET socketpair: one JSON message per
//! datagram, so a message is never split or merged.

use crate::fdpass;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// First stage: a new user namespace exists; map its ids.
    MapIds { pid: i32 },
    /// Parent: maps written.
    IdsMapped,
    /// First stage: a new time namespace exists; set its clock offsets.
    SetClocks { pid: i32 },
    /// Parent: offsets written.
    ClocksSet,
    /// First stage (systemd driver): put me in the container's scope.
    JoinCgroup { pid: i32 },
    /// Parent: done; the cgroup directories exist.
    CgroupJoined,
    /// First stage: the container's init has this pid (in berth's pid ns).
    InitPid { pid: i32 },
    /// Init: namespaces and mounts are ready; run prestart/createRuntime.
    RunHooks,
    /// Parent: hooks done; here is the state the container-side hooks get.
    HooksDone { state: crate::state::HookState },
    /// Container process: its seccomp filter's notification fd is
    /// attached; hand it to the agent.
    SeccompListener,
    /// Init: set up and parked, waiting for `start`.
    Ready,
    /// Parent: the container is recorded as created; init is on its own
    /// from now on. Until this comes, init dies with berth.
    Handover,
    /// Either side: setup failed.
    Error { msg: String },
    /// Container side: a log record for berth to write.
    Log {
        level: crate::logging::Level,
        msg: String,
    },
}

pub struct Channel {
    fd: OwnedFd,
}

#[derive(Debug, thiserror::Error)]
#[error("sync with container init: {0}")]
pub struct SyncError(String);

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Channel {
    /// Two connected ends: one for berth, one for the container side.
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Sends this process's log records over the channel from now on (see
    /// [`crate::logging::forward`]); berth reads them until init is ready.
    pub fn forward_logs(&self) {
        let Ok(fd) = self.fd.try_clone() else {
            return;
        };
        let ch = Channel { fd };
        crate::logging::forward(move |level, msg| {
            let _ = ch.send(&Msg::Log {
                level,
                msg: msg.to_string(),
            });
        });
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        self.send_with(msg, None)
    }

    /// Sends `msg` with `fd` attached.
    pub fn send_fd(&self, msg: &Msg, fd: OwnedFd) -> Result<(), SyncError> {
        self.send_with(msg, Some(fd))
    }

    fn send_with(&self, msg: &Msg, fd: Option<OwnedFd>) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg).expect("sync message serializes");
        fdpass::send(&self.fd, &data, fd.as_ref().map(|f| f.as_raw_fd()))
            .map(drop)
            .map_err(|e| SyncError(format!("send: {e}")))
    }

    /// Waits for the next message; an orderly EOF means the peer died.
    pub fn recv(&self) -> Result<Msg, SyncError> {
        self.recv_fd().map(|(msg, _)| msg)
    }

    /// [`Channel::recv`], with the fd the message carries, if any.
    pub fn recv_fd(&self) -> Result<(Msg, Option<OwnedFd>), SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) =
            fdpass::recv(&self.fd, &mut buf).map_err(|e| SyncError(format!("recv: {e}")))?;
        if n == 0 {
            return Err(SyncError("container init exited during setup".into()));
        }
        serde_json::from_slice(&buf[..n])
            .map(|msg| (msg, fd))
            .map_err(|e| SyncError(format!("bad message: {e}")))
    }
}
