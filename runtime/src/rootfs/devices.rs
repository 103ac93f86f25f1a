//! Device nodes in the container's /dev: the defaults every container gets,
//! the spec's `linux.devices`, and the standard /dev symlinks.

use super::{mount_err, target::Root, RootfsError};
use crate::error::{Context, OsError};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::path::Path;

/// (path, major, minor) of the character devices runc always creates.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&str, &str); 4] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Creates the default devices and links (when the spec gives the
/// container its own /dev) and every device in `linux.devices`.
/// In a user namespace mknod is not allowed: devices are bind mounts of
/// the host's nodes instead.
pub fn create_all(
    root: &Root,
    own_dev: bool,
    devices: &[LinuxDevice],
    userns: bool,
) -> Result<(), RootfsError> {
    if own_dev {
        // A default the spec lists is the spec's to make, as in runc.
        let listed = |path: &str| devices.iter().any(|d| d.path() == Path::new(path));
        for (path, major, minor) in DEFAULTS.into_iter().filter(|(p, _, _)| !listed(p)) {
            let node = Node {
                path: Path::new(path),
                kind: SFlag::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            };
            create(root, &node, userns)?;
        }
    }
    for d in devices {
        let node = Node {
            path: d.path(),
            kind: kind_of(d.typ()),
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        create(root, &node, userns)?;
    }
    // Last, as runc does: /dev/ptmx becomes the devpts link even when the
    // spec lists a ptmx device node.
    if own_dev {
        links(root)?;
    }
    Ok(())
}

fn kind_of(t: LinuxDeviceType) -> SFlag {
    match t {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    }
}

fn create(root: &Root, node: &Node, userns: bool) -> Result<(), RootfsError> {
    // Only the node's directory is resolved: what is at the node's path is
    // looked at, never followed.
    let name = node.path.file_name().unwrap_or_default();
    let what = |what: &str| format!("device {}: {what}", node.path.display());
    let dir = pinned_dir(root, node.path.parent().unwrap_or(Path::new("/")))?;
    let dest = dir.path().join(name);
    let there = already_there(&dest, node, userns)?;
    if userns {
        if !there {
            std::fs::File::create_new(&dest).context(what("create the bind target"))?;
        }
        return mount(
            Some(node.path),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(mount_err(node.path, node.path, "bind"));
    }
    let perm = Mode::from_bits_truncate(node.mode & 0o7777);
    if !there {
        mknod(&dest, node.kind, perm, makedev(node.major, node.minor)).context(what("mknod"))?;
    }
    // mknod is filtered by the umask; chmod makes the mode exactly the spec's.
    std::fs::set_permissions(
        &dest,
        std::os::unix::fs::PermissionsExt::from_mode(node.mode & 0o7777),
    )
    .context(what("chmod"))?;
    nix::unistd::chown(&dest, Some(node.uid.into()), Some(node.gid.into()))
        .context(what("chown"))?;
    Ok(())
}

/// Whether the image has the node already: the same kind and numbers is
/// kept (in a user namespace, any file to bind over); anything else is
/// refused, as runc 1.4 refuses it, rather than deleted from the image.
fn already_there(dest: &Path, node: &Node, userns: bool) -> Result<bool, RootfsError> {
    let st = match nix::sys::stat::lstat(dest) {
        Err(nix::errno::Errno::ENOENT) => return Ok(false),
        Err(e) => {
            let what = format!("device {}: stat what is there", node.path.display());
            return Err(OsError::new(what, e).into());
        }
        Ok(st) => st,
    };
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let path = node.path.display();
    if userns && (kind == SFlag::S_IFREG || kind == node.kind) {
        return Ok(true);
    }
    if kind != node.kind {
        return Err(RootfsError::DeviceConflict(format!(
            "{path} has incorrect ftype"
        )));
    }
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    if (major as u64, minor as u64) != (node.major, node.minor) {
        return Err(RootfsError::DeviceConflict(format!(
            "{path} has incorrect major:minor: {major}:{minor} doesn't match expected {}:{}",
            node.major, node.minor
        )));
    }
    Ok(true)
}

/// The container's directory `inside` (made if missing), opened in the rootfs.
fn pinned_dir(root: &Root, inside: &Path) -> Result<super::target::Pinned, RootfsError> {
    let dir = root.join(inside)?;
    root.make(&dir, true)?;
    root.pin(&dir)
}

fn links(root: &Root) -> Result<(), RootfsError> {
    let mut all: Vec<(&str, &str)> = LINKS.to_vec();
    if Path::new("/proc/kcore").exists() {
        all.push(("/proc/kcore", "/dev/core"));
    }
    // /dev/ptmx must be the container's own devpts multiplexer.
    all.push(("pts/ptmx", "/dev/ptmx"));
    let dev = pinned_dir(root, Path::new("/dev"))?;
    for (target, link) in all {
        let dest = dev.path().join(link.trim_start_matches("/dev/"));
        let _ = std::fs::remove_file(&dest);
        std::os::unix::fs::symlink(target, &dest)
            .context(format!("device {link}: create the symlink"))?;
    }
    Ok(())
}

/// Points stdio that is the host's /dev/null at the container's own, once
/// in the new root (runc does so for a detached container alone): an fd
/// of the host's /dev would keep a mount of the host's in the container's
/// hands, and CRIU cannot dump an fd whose mount is not in the container.
/// A container without a /dev/null of its own keeps the host's.
pub fn reopen_dev_null() -> Result<(), RootfsError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(own) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return Ok(());
    };
    let rdev = own
        .metadata()
        .context("stat the container's /dev/null")?
        .rdev();
    for fd in 0..3 {
        let stat = std::fs::metadata(format!("/proc/self/fd/{fd}"));
        if stat.is_ok_and(|s| s.file_type().is_char_device() && s.rdev() == rdev) {
            // SAFETY: dup2 of an fd berth holds onto a stdio number.
            if unsafe { libc::dup2(own.as_raw_fd(), fd) } < 0 {
                let e = std::io::Error::last_os_error();
                return Err(OsError::new(format!("reopen fd {fd} on /dev/null"), e).into());
            }
        }
    }
    Ok(())
}
