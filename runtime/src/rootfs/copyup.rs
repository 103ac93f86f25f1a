//! `tmpcopyup`: a tmpfs mounted over a directory starts with a copy of
//! what the directory held. berth keeps a descriptor of the directory
//! before the mount covers it and copies from there, so no second mount
//! point or move is needed.

use nix::sys::stat::{mknod, Mode, SFlag};
use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory about to be covered, open so it can still be read.
pub struct Covered {
    dir: File,
}

impl Covered {
    /// `dest` is a pinned target's magic link, to be followed.
    pub fn open(dest: &Path) -> std::io::Result<Covered> {
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dest)?;
        Ok(Covered { dir })
    }

    /// Copies everything the covered directory holds into `dest` (now the
    /// tmpfs), keeping types, modes and owners; the tmpfs root takes the
    /// directory's own mode and owner.
    pub fn copy_into(&self, dest: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let src = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        copy_tree(&src, dest)?;
        keep_owner_and_mode(&self.dir.metadata()?, dest)
    }
}

fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let t = meta.file_type();
        if t.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if t.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
        } else if t.is_file() {
            fs::copy(&from, &to)?;
        } else {
            let kind = if t.is_block_device() {
                SFlag::S_IFBLK
            } else if t.is_char_device() {
                SFlag::S_IFCHR
            } else if t.is_fifo() {
                SFlag::S_IFIFO
            } else {
                continue; // a socket is bound by a process, not copied
            };
            let mode = Mode::from_bits_truncate(meta.mode());
            mknod(&to, kind, mode, meta.rdev()).map_err(std::io::Error::from)?;
        }
        keep_owner_and_mode(&meta, &to)?;
    }
    Ok(())
}

fn keep_owner_and_mode(meta: &fs::Metadata, to: &Path) -> std::io::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}
