//! A `cgroup` mount inside the container. On a cgroup v1 (or hybrid) host,
//! as runc does: a tmpfs with one bind mount per hierarchy, each showing
//! only the container's own cgroup. On a pure v2 host: a cgroup2 mount
//! when the container has its own cgroup namespace (which roots it at the
//! container's cgroup), else a bind mount of the container's cgroup.

use super::{mount_err, mountinfo, options::Parsed, remount, target::Root, RootfsError};
use crate::error::Context;
use nix::mount::{mount, MsFlags};
use std::path::Path;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `cgroup` is the container's cgroup path, the same in every hierarchy.
pub fn mount_cgroup(
    root: &Root,
    dest: &Path,
    opts: &Parsed,
    cgroup: &Path,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let entries = mountinfo::parse(&info);
    let relative = cgroup.strip_prefix("/").unwrap_or(cgroup);
    let unified = entries
        .iter()
        .any(|e| e.mount_point == CGROUP_ROOT && e.fs_type == "cgroup2");
    if unified && cgroupns {
        return mount(
            Some("cgroup2"),
            &root.pin(dest)?.path(),
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        )
        .map_err(mount_err("cgroup2", dest, "cgroup2"));
    }
    let bind = Parsed {
        flags: opts.flags | MsFlags::MS_BIND,
        ..Parsed::default()
    };
    if unified {
        return super::bind(root, &Path::new(CGROUP_ROOT).join(relative), dest, &bind);
    }
    let flags = opts.flags - MsFlags::MS_RDONLY;
    let at = root.pin(dest)?;
    mount(
        Some("tmpfs"),
        &at.path(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(mount_err("tmpfs", dest, "tmpfs"))?;
    // The new tmpfs: nothing else can see it, so paths under it are safe.
    let tmpfs = root.pin(dest)?;
    for e in entries.iter().filter(|e| is_hierarchy(e)) {
        let name = e
            .mount_point
            .trim_start_matches(CGROUP_ROOT)
            .trim_start_matches('/');
        let target = dest.join(name);
        root.make(&target, true)?;
        let source = Path::new(&e.mount_point).join(relative);
        // A rootless container has no cgroup where the caller may not
        // make one: that hierarchy stays an empty directory.
        if source.exists() {
            super::bind(root, &source, &target, &bind)?;
        }
        link_comounted(&tmpfs.path(), dest, name)?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount(&tmpfs.path(), flags | MsFlags::MS_RDONLY)
            .map_err(mount_err("tmpfs", dest, "remount"))?;
    }
    Ok(())
}

fn is_hierarchy(e: &mountinfo::Entry) -> bool {
    (e.fs_type == "cgroup" || e.fs_type == "cgroup2")
        && Path::new(&e.mount_point).parent() == Some(Path::new(CGROUP_ROOT))
}

/// `cpu,cpuacct` mounted together also answers to `cpu` and `cpuacct`.
/// `dir` is the pinned tmpfs, `dest` what errors call it.
fn link_comounted(dir: &Path, dest: &Path, name: &str) -> Result<(), RootfsError> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',') {
        let link = dir.join(part);
        if !link.exists() {
            std::os::unix::fs::symlink(name, &link)
                .context(super::at_dest(&dest.join(part), "symlink"))?;
        }
    }
    Ok(())
}
