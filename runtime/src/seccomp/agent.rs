//! Handing a filter's notification fd to the seccomp agent at
//! `listenerPath`, as the runtime spec says: one connection per process,
//! one message on it, the "container process state" JSON with the fd
//! attached (SCM_RIGHTS), then the connection is closed.

use super::SeccompError;
use oci_spec::runtime::LinuxSeccomp;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Sends `fd`, the notification fd of process `pid`, with the container's
/// `state` (the JSON hooks get) to the agent `s` names.
pub fn send(
    s: &LinuxSeccomp,
    state: &impl serde::Serialize,
    pid: i32,
    fd: OwnedFd,
) -> Result<(), SeccompError> {
    let path = s.listener_path().clone().unwrap_or_default();
    let fail = |what| {
        let path = path.clone();
        move |source| SeccompError::Agent { path, what, source }
    };
    let conn = UnixStream::connect(&path).map_err(|source| SeccompError::Connect {
        path: path.clone(),
        source,
    })?;
    let msg = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    })
    .to_string();
    let sent = crate::fdpass::send(&conn, msg.as_bytes(), Some(fd.as_raw_fd()))
        .map_err(|e| fail("send the container process state")(e.into()))?;
    // A stream may take part of a large state: the fd went with the first.
    (&conn)
        .write_all(&msg.as_bytes()[sent..])
        .map_err(fail("send the container process state"))
}
