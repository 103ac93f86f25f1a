//! The fds a container's process receives: stdio, the sockets systemd
//! handed berth for activation (`LISTEN_FDS`), and the `--preserve-fds`
//! that follow them, as runc passes them. Whatever else berth's caller left
//! open without close-on-exec is closed as berth starts: init, parked in
//! the container until `start`, and every hook would hold it otherwise.

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

/// Closes every fd from `3 + kept` on.
pub fn close_inherited(kept: u32) {
    let first = 3u32.saturating_add(kept);
    // SAFETY: close_range only closes fds in the range; nothing in berth
    // has opened one yet, so no live handle is invalidated.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if r != 0 {
        close_each_from(first);
    }
}

/// close_range's fallback for kernels before 5.9.
fn close_each_from(first: u32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: Vec<i32> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in open {
        // SAFETY: closing a plain number; the listing's own fd, closed by
        // now, fails harmlessly with EBADF.
        unsafe { libc::close(fd) };
    }
}
