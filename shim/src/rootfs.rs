//! The container's root filesystem as containerd hands it to Create: a list
//! of mounts (an overlay from the snapshotter, or a bind for `native`) that
//! the shim mounts at `<bundle>/rootfs` and unmounts at Delete.

use containerd_shim::protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("mount {kind} {source_path} at {target}: {errno}")]
pub struct MountError {
    kind: String,
    source_path: String,
    target: String,
    errno: nix::Error,
}

/// Mounts `mounts` at `target`, in order; on failure undoes what it did.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    for (done, m) in mounts.iter().enumerate() {
        let (flags, data) = flags_and_data(&m.options);
        let kind = if flags.contains(MsFlags::MS_BIND) {
            None
        } else {
            Some(m.type_.as_str())
        };
        if let Err(errno) = mount(
            Some(m.source.as_str()),
            target,
            kind,
            flags,
            Some(data.as_str()),
        ) {
            (0..done).for_each(|_| unmount(target));
            return Err(MountError {
                kind: m.type_.clone(),
                source_path: m.source.clone(),
                target: target.display().to_string(),
                errno,
            });
        }
    }
    Ok(())
}

/// Unmounts the top mount at `target`; nothing mounted is fine.
pub fn unmount(target: &Path) {
    let _ = umount2(target, MntFlags::MNT_DETACH);
}

/// Mount options as mount(2) wants them: the flags, and the rest joined
/// with commas as the file system's data (overlay's lowerdir=..., etc.).
fn flags_and_data(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match flag(o) {
            Some((f, true)) => flags.remove(f),
            Some((f, false)) => flags.insert(f),
            None => data.push(o.as_str()),
        }
    }
    (flags, data.join(","))
}

/// A flag option, and whether it clears the flag (`rw`, `suid`, ...).
fn flag(option: &str) -> Option<(MsFlags, bool)> {
    Some(match option {
        "ro" => (MsFlags::MS_RDONLY, false),
        "rw" => (MsFlags::MS_RDONLY, true),
        "bind" => (MsFlags::MS_BIND, false),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, false),
        "nosuid" => (MsFlags::MS_NOSUID, false),
        "suid" => (MsFlags::MS_NOSUID, true),
        "nodev" => (MsFlags::MS_NODEV, false),
        "dev" => (MsFlags::MS_NODEV, true),
        "noexec" => (MsFlags::MS_NOEXEC, false),
        "exec" => (MsFlags::MS_NOEXEC, true),
        "noatime" => (MsFlags::MS_NOATIME, false),
        "relatime" => (MsFlags::MS_RELATIME, false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_data_and_flags_are_flags() {
        let opts: Vec<String> = ["index=off", "ro", "lowerdir=/a:/b", "nodev"]
            .map(String::from)
            .to_vec();
        let (flags, data) = flags_and_data(&opts);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
        assert_eq!(data, "index=off,lowerdir=/a:/b");
    }

    #[test]
    fn rw_clears_ro() {
        let (flags, _) = flags_and_data(&["rbind".into(), "ro".into(), "rw".into()]);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }
}
