//! The fds a container's process receives: stdio, the sockets systemd
//! handed berth for activation (`LISTEN_FDS`), and the `--preserve-fds`
//! that follow them, as runc passes them. Whatever else berth's caller left
//! open stays open for berth itself (a `--process /dev/fd/3` names one) but
//! reaches no container process and no hook.

use std::os::fd::RawFd;
use std::sync::OnceLock;

/// The fds berth was given that no container process may have.
static WITHHELD: OnceLock<Vec<RawFd>> = OnceLock::new();

/// How many fds from 3 on systemd passed for socket activation: LISTEN_FDS,
/// when LISTEN_PID names this process (another process's fds are not ours).
pub fn activation() -> u32 {
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok());
    match (ours, count) {
        (true, Some(n)) => n,
        _ => 0,
    }
}

/// The environment entries that tell the container's process which fds
/// are its activation sockets; it is pid 1 of its namespace.
pub fn activation_env(count: u32) -> [String; 2] {
    [format!("LISTEN_FDS={count}"), "LISTEN_PID=1".to_string()]
}

/// Called first thing: every fd from `3 + passed` on that berth inherited
/// closes on exec (hooks, exec'd processes), and is remembered for
/// [`close_withheld`].
pub fn withhold_inherited(passed: u32) {
    let first = 3i64 + i64::from(passed);
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| i64::from(*fd) >= first)
        .collect();
    // The listing's own fd is listed too, but closed by now: the flag
    // fails on it, so its number (free for berth's own files) is dropped.
    let open = listed
        .into_iter()
        // SAFETY: F_SETFD takes a plain integer and changes only the flag.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0)
        .collect();
    let _ = WITHHELD.set(open);
}

/// Closes the withheld fds in a process that stays in the container
/// before it execs (init, parked until `start`, would hold them).
pub fn close_withheld() {
    for fd in WITHHELD.get().into_iter().flatten() {
        // SAFETY: in this forked child the numbers are still the inherited
        // files: berth never closes them, so none was reused.
        unsafe { libc::close(*fd) };
    }
}
