//! Terminals: the container's init makes a pty inside the container and
//! sends the master to `--console-socket` (SCM_RIGHTS, as runc does); the
//! caller owns it from then on.

use crate::error::{Context, OsError};
use crate::fdpass;
use crate::rootfs::mountapi;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("cannot connect to console socket {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up the container's terminal: {0}")]
    Setup(#[from] OsError),
    #[error("{0} is not a pty slave: the container's /dev/pts cannot give the terminal")]
    NotPty(String),
    #[error("no terminal master arrived on the console socket")]
    NoFd,
}

pub fn connect(path: &Path) -> Result<UnixStream, TtyError> {
    UnixStream::connect(path).map_err(|source| TtyError::Connect {
        path: path.display().to_string(),
        source,
    })
}

/// In the container: makes a pty, sends its master over `socket`, and
/// makes the slave this process's controlling terminal and stdio. Only a
/// container's init in a mount namespace of its own binds it to
/// /dev/console too, as runc does: an exec must not take the console
/// from init, and without a namespace the mount would land in the
/// caller's.
pub fn setup_console(
    socket: &UnixStream,
    size: Option<(u16, u16)>,
    bind_console: bool,
) -> Result<(), TtyError> {
    let Pty {
        master,
        slave,
        name,
    } = Pty::open()?;
    if let Some((rows, cols)) = size {
        set_size(slave.as_raw_fd(), rows, cols).context("set the console size")?;
    }
    if bind_console {
        mount_console(&slave)?;
    }
    send_master(socket, &master, &name)?;
    drop(master);
    // SAFETY: TIOCSCTTY takes an int argument; slave is a valid tty fd.
    nix::errno::Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .context("make the pty the controlling terminal")?;
    nix::unistd::dup2_stdin(&slave).context("dup the pty to stdin")?;
    nix::unistd::dup2_stdout(&slave).context("dup the pty to stdout")?;
    nix::unistd::dup2_stderr(&slave).context("dup the pty to stderr")?;
    Ok(())
}

/// A new pty from the /dev/ptmx of the caller's mount namespace.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub name: String,
}

impl Pty {
    pub fn open() -> Result<Pty, TtyError> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .context("open /dev/ptmx")?;
        grantpt(&master).context("grantpt")?;
        unlockpt(&master).context("unlockpt")?;
        let name = ptsname_r(&master).context("ptsname")?;
        let slave = open_peer(&master, &name)?;
        // SAFETY: into_raw_fd hands over the fd PtyMaster owned.
        let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
        Ok(Pty {
            master,
            slave,
            name,
        })
    }
}

/// Sends a pty master to a console socket with its name, as runc does.
pub fn send_master(socket: &UnixStream, master: &impl AsRawFd, name: &str) -> Result<(), TtyError> {
    fdpass::send(socket, name.as_bytes(), Some(master.as_raw_fd()))
        .context("send the pty master")?;
    Ok(())
}

/// Whether a file is a Unix 98 pty slave, by its stat.
pub fn is_pty_slave(st: &nix::sys::stat::FileStat) -> bool {
    let major = nix::sys::stat::major(st.st_rdev);
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && UNIX98_PTY_SLAVE_MAJORS.contains(&major)
}

/// The slave of `master`, asked of the master itself (TIOCGPTPEER, Linux
/// 4.13) rather than opened by its name: in the container's /dev, that
/// name can lead elsewhere (CVE-2025-52565). Older kernels open the name
/// and check that a pty slave came of it.
fn open_peer(master: &impl AsRawFd, name: &str) -> Result<OwnedFd, TtyError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags as an int and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    let slave = match nix::errno::Errno::result(fd) {
        // SAFETY: the ioctl just made this descriptor; nothing else owns it.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOTTY) => {
            nix::fcntl::open(name, flags, Mode::empty()).context("open the pty slave")?
        }
        Err(e) => return Err(OsError::new("open the pty slave", e).into()),
    };
    let st = nix::sys::stat::fstat(&slave).context("stat the pty slave")?;
    if !is_pty_slave(&st) {
        return Err(TtyError::NotPty(name.to_string()));
    }
    Ok(slave)
}

/// The device majors Linux gives Unix 98 pty slaves.
const UNIX98_PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// /dev/console is the container's terminal, as runc makes it: the pty
/// slave, bound by its descriptor onto a /dev/console that is no link.
fn mount_console(slave: &OwnedFd) -> Result<(), TtyError> {
    // Read-only: the mount point made earlier opens on a read-only /dev.
    let console = nix::fcntl::open(
        "/dev/console",
        OFlag::O_CREAT | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .context("create /dev/console")?;
    Ok(mountapi::bind_file(slave, &console).context("bind the pty to /dev/console")?)
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the call.
    nix::errno::Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Receives the pty master a container sent over a console socket.
pub fn recv_fd(socket: &UnixStream) -> Result<OwnedFd, TtyError> {
    let mut buf = [0u8; 4096]; // the pty's name comes along
    let (_, fd) = fdpass::recv(socket, &mut buf).context("receive the pty master")?;
    fd.ok_or(TtyError::NoFd)
}
