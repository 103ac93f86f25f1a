//! A `cgroup` mount inside the container. On a cgroup v1 (or hybrid) host,
//! as runc does: a tmpfs with one bind mount per hierarchy, each showing
//! only the container's own cgroup. On a pure v2 host: a cgroup2 mount
//! when the container has its own cgroup namespace (which roots it at the
//! container's cgroup), else a bind mount of the container's cgroup.

use super::{mount_err, mountinfo, options::Parsed, remount, target::Root, RootfsError};
use crate::error::Context;
use nix::errno::Errno;
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
    let (entries, relative, unified) = host_view(cgroup);
    if unified && cgroupns {
        let mounted = mount(
            Some("cgroup2"),
            &root.pin(dest)?.path(),
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        );
        match mounted {
            // The host's cgroup2 already there (a rootless /sys is the
            // host's, bound), or a user namespace that may not mount it:
            // a bind mount instead, as runc falls back to.
            Err(Errno::EBUSY | Errno::EPERM) => {}
            r => return r.map_err(mount_err("cgroup2", dest, "cgroup2")),
        }
    }
    let bind = Parsed {
        flags: opts.flags | MsFlags::MS_BIND,
        ..Parsed::default()
    };
    if unified {
        let own = Path::new(CGROUP_ROOT).join(relative);
        if !own.exists() {
            // A rootless container without a cgroup of its own: nothing
            // of the host's tree, as runc masks it.
            return empty_tmpfs(root, dest, opts.flags | MsFlags::MS_RDONLY);
        }
        return super::bind(root, &own, dest, &bind);
    }
    let flags = opts.flags - MsFlags::MS_RDONLY;
    empty_tmpfs(root, dest, flags)?;
    // The new tmpfs: nothing else can see it, so paths under it are safe.
    let tmpfs = root.pin(dest)?;
    for (name, source) in hierarchies(&entries, relative) {
        let target = dest.join(name);
        root.make(&target, true)?;
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

fn empty_tmpfs(root: &Root, dest: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    mount(
        Some("tmpfs"),
        &root.pin(dest)?.path(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(mount_err("tmpfs", dest, "tmpfs"))
}

/// The host's mounts, the container's `cgroup` relative to a hierarchy's
/// root, and whether /sys/fs/cgroup is cgroup2 itself.
fn host_view(cgroup: &Path) -> (Vec<mountinfo::Entry>, &Path, bool) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let entries = mountinfo::parse(&info);
    let relative = cgroup.strip_prefix("/").unwrap_or(cgroup);
    let unified = entries
        .iter()
        .any(|e| e.mount_point == CGROUP_ROOT && e.fs_type == "cgroup2");
    (entries, relative, unified)
}

/// Each v1 hierarchy (and hybrid's `unified`) by its name under
/// /sys/fs/cgroup, with the container's cgroup (`relative`) in it.
fn hierarchies<'a>(
    entries: &'a [mountinfo::Entry],
    relative: &'a Path,
) -> impl Iterator<Item = (&'a str, std::path::PathBuf)> + 'a {
    entries.iter().filter(|e| is_hierarchy(e)).map(move |e| {
        let name = e.mount_point.trim_start_matches(CGROUP_ROOT);
        let source = Path::new(&e.mount_point).join(relative);
        (name.trim_start_matches('/'), source)
    })
}

/// The bind mounts a `cgroup` mount at `dest` is made of, (target, source)
/// on the host, for the container's `cgroup`: what a checkpoint must name
/// as external, since their sources are the host's.
pub(crate) fn binds(dest: &Path, cgroup: &Path) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let (entries, relative, unified) = host_view(cgroup);
    if unified {
        return vec![(dest.to_path_buf(), Path::new(CGROUP_ROOT).join(relative))];
    }
    hierarchies(&entries, relative)
        .filter(|(_, source)| source.exists())
        .map(|(name, source)| (dest.join(name), source))
        .collect()
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
