//! A `cgroup` mount inside the container. On a cgroup v1 (or hybrid) host,
//! as runc does: a tmpfs with one bind mount per hierarchy, each showing
//! the container's own cgroup. On a pure v2 host: a cgroup2 mount.

use super::{mount_err, mountinfo, options::Parsed, remount, RootfsError};
use nix::mount::{mount, MsFlags};
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub fn mount_cgroup(dest: &Path, opts: &Parsed) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let entries = mountinfo::parse(&info);
    let unified = entries
        .iter()
        .any(|e| e.mount_point == CGROUP_ROOT && e.fs_type == "cgroup2");
    let flags = opts.flags - MsFlags::MS_RDONLY;
    if unified {
        return mount(
            Some("cgroup2"),
            dest,
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        )
        .map_err(mount_err("cgroup2", dest, "cgroup2"));
    }
    mount(Some("tmpfs"), dest, Some("tmpfs"), flags, Some("mode=755"))
        .map_err(mount_err("tmpfs", dest, "tmpfs"))?;
    for e in entries.iter().filter(|e| is_hierarchy(e)) {
        let Some(src) = own_cgroup_dir(e, &own) else {
            continue;
        };
        let name = e
            .mount_point
            .trim_start_matches(CGROUP_ROOT)
            .trim_start_matches('/');
        let target = dest.join(name);
        std::fs::create_dir_all(&target).map_err(|source| RootfsError::Destination {
            dest: target.clone(),
            what: "mkdir",
            source,
        })?;
        let bind = Parsed {
            flags: opts.flags | MsFlags::MS_BIND,
            ..Parsed::default()
        };
        super::bind(&src, &target, &bind)?;
        link_comounted(dest, name)?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount(dest, flags | MsFlags::MS_RDONLY).map_err(mount_err("tmpfs", dest, "remount"))?;
    }
    Ok(())
}

fn is_hierarchy(e: &mountinfo::Entry) -> bool {
    (e.fs_type == "cgroup" || e.fs_type == "cgroup2")
        && Path::new(&e.mount_point).parent() == Some(Path::new(CGROUP_ROOT))
}

/// The directory of this process's cgroup in one hierarchy, matched by the
/// hierarchy's controllers (`cpu,cpuacct`, `name=systemd`, or v2's empty).
fn own_cgroup_dir(e: &mountinfo::Entry, proc_cgroup: &str) -> Option<PathBuf> {
    let controllers: Vec<&str> = match e.fs_type.as_str() {
        "cgroup2" => Vec::new(),
        _ => e
            .super_opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent") && *o != "noprefix"
            })
            .collect(),
    };
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut listed: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let mut want = controllers.clone();
        listed.sort_unstable();
        want.sort_unstable();
        (listed == want).then(|| Path::new(&e.mount_point).join(path.trim_start_matches('/')))
    })
}

/// `cpu,cpuacct` mounted together also answers to `cpu` and `cpuacct`.
fn link_comounted(dest: &Path, name: &str) -> Result<(), RootfsError> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',') {
        let link = dest.join(part);
        if !link.exists() {
            std::os::unix::fs::symlink(name, &link).map_err(|source| RootfsError::Destination {
                dest: link,
                what: "symlink",
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_cgroup_per_hierarchy() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let own = "4:cpuacct,cpu:/docker/x\n1:name=systemd:/sys\n0::/u\n";
        let e = mountinfo::parse(info);
        assert_eq!(
            own_cgroup_dir(&e[0], own).unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/docker/x")
        );
        assert_eq!(
            own_cgroup_dir(&e[1], own).unwrap(),
            PathBuf::from("/sys/fs/cgroup/systemd/sys")
        );
        assert_eq!(
            own_cgroup_dir(&e[2], own).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/u")
        );
    }
}
