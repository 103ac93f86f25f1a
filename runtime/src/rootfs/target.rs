//! Mount targets made and opened inside the rootfs (CVE-2021-30465).
//!
//! [`super::path::secure_join`] resolves a destination once, by path; a
//! process with write access to a shared volume can swap a directory on
//! that path for a symlink before the mount happens, and a mount by path
//! would then follow it out of the rootfs. So every directory on the way
//! is made with `mkdirat` under a parent opened in the rootfs, and every
//! mount goes onto `/proc/self/fd/N` of a target opened with `openat2`'s
//! `RESOLVE_IN_ROOT`, where a symlink cannot leave the rootfs. The opened
//! target is also compared with the path that was resolved: a target that
//! moved is refused rather than mounted somewhere the spec did not say.

use super::{at_dest, RootfsError};
use crate::error::{Context, OsError};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The rootfs, held open so that targets are resolved against it.
pub struct Root {
    fd: OwnedFd,
    /// The rootfs as the caller named it (destinations are joined to it).
    given: PathBuf,
    /// The rootfs as the kernel names it, to check opened targets against.
    real: PathBuf,
}

/// A target opened inside the rootfs; mount onto [`Pinned::path`].
pub struct Pinned {
    fd: OwnedFd,
}

impl Pinned {
    /// The magic link that names exactly the opened target.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

impl Root {
    pub fn open(rootfs: &Path) -> Result<Root, RootfsError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(rootfs, flags, Mode::empty())
            .context(at_dest(rootfs, "open the rootfs"))?;
        let real = fd_path(&fd).context(at_dest(rootfs, "read the rootfs's path"))?;
        Ok(Root {
            fd,
            given: rootfs.to_path_buf(),
            real,
        })
    }

    /// The container's path `inside` as a host path under the rootfs,
    /// symlinks resolved in the rootfs.
    pub fn join(&self, inside: &Path) -> Result<PathBuf, RootfsError> {
        Ok(super::path::secure_join(&self.given, inside)?)
    }

    /// A bind source named by its host path below the rootfs is the
    /// container's own file: opened in the rootfs (symlinks resolved there,
    /// as for a destination), through the mounts made before it. None for a
    /// source elsewhere.
    pub fn pin_source(&self, src: &Path) -> Result<Option<Pinned>, RootfsError> {
        match src.strip_prefix(&self.given) {
            Ok(inside) if !inside.as_os_str().is_empty() => {
                Ok(Some(self.pin(&self.join(inside)?)?))
            }
            _ => Ok(None),
        }
    }

    /// Creates `dest` (a path under the rootfs, as `secure_join` gave it)
    /// if missing: a directory, or an empty file for a file bind, with
    /// any missing parents.
    pub fn make(&self, dest: &Path, dir: bool) -> Result<(), RootfsError> {
        let rel = self.relative(dest)?;
        let mut parent = PathBuf::new();
        let parts: Vec<_> = rel.iter().collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let at = self.resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY, dest)?;
            let made = if last && !dir {
                let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
                nix::fcntl::openat(&at, *part, flags, Mode::from_bits_truncate(0o644)).map(drop)
            } else {
                nix::sys::stat::mkdirat(&at, *part, Mode::from_bits_truncate(0o755))
            };
            match made {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(OsError::new(at_dest(dest, "create it in the rootfs"), e).into())
                }
            }
            parent.push(part);
        }
        Ok(())
    }

    /// Opens `dest` inside the rootfs for mounting onto.
    pub fn pin(&self, dest: &Path) -> Result<Pinned, RootfsError> {
        let rel = self.relative(dest)?;
        let fd = self.resolve(&rel, OFlag::O_PATH, dest)?;
        let now = fd_path(&fd).context(at_dest(dest, "read the opened target's path"))?;
        let expected = self.real.join(&rel);
        if now != expected {
            return Err(RootfsError::Moved {
                dest: dest.to_path_buf(),
                now,
            });
        }
        Ok(Pinned { fd })
    }

    fn relative(&self, dest: &Path) -> Result<PathBuf, RootfsError> {
        dest.strip_prefix(&self.given)
            .map(Path::to_path_buf)
            .map_err(|_| RootfsError::Refused {
                dest: dest.to_path_buf(),
                why: "is outside the rootfs",
            })
    }

    /// `rel` opened with symlinks resolved as if the rootfs were `/`;
    /// kernels before 5.6 lack openat2, and get the same by a walk of
    /// `secure_join` and a final open that follows no link.
    fn resolve(&self, rel: &Path, flags: OFlag, dest: &Path) -> Result<OwnedFd, RootfsError> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let opened = match openat2(&self.fd, rel, how) {
            Err(Errno::ENOSYS) => {
                let path = super::path::secure_join(&self.given, rel)?;
                let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                nix::fcntl::open(&path, flags, Mode::empty())
            }
            r => r,
        };
        Ok(opened.context(at_dest(dest, "open it in the rootfs"))?)
    }
}

fn fd_path(fd: &OwnedFd) -> nix::Result<PathBuf> {
    nix::fcntl::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-target-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root")).unwrap();
        d
    }

    #[test]
    fn a_symlink_on_the_way_stays_in_the_root() {
        let d = scratch("link");
        let root = d.join("root");
        // As if swapped in after secure_join saw a plain directory.
        symlink("..", root.join("vol")).unwrap();
        let r = Root::open(&root).unwrap();
        r.make(&root.join("vol/made"), true).unwrap();
        assert!(!d.join("made").exists(), "mkdir followed the link out");
        assert!(root.join("made").is_dir(), "the link resolves in the root");
        let err = r.pin(&root.join("vol/made")).err().expect("moved target");
        assert!(err.to_string().contains("moved"), "{err}");
        r.make(&root.join("file"), false).unwrap();
        assert!(root.join("file").is_file());
        r.pin(&root.join("file")).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
