//! The container's root filesystem as containerd hands it to Create: a list
//! of mounts (an overlay from the snapshotter, or a bind for `native`) that
//! the shim mounts at `<bundle>/rootfs` and unmounts at Delete.

use berth::rootfs::idmap::bind_idmapped;
use containerd_shim::protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("mount {kind} {source_path} at {target}: {why}")]
pub struct MountError {
    kind: String,
    source_path: String,
    target: String,
    why: String,
}

/// Mounts `mounts` at `target`, in order; on failure undoes what it did.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(why) = mount_one(m, target) {
            (0..done).for_each(|_| unmount(target));
            return Err(MountError {
                kind: m.type_.clone(),
                source_path: m.source.clone(),
                target: target.display().to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// One mount; with containerd 2's `uidmap=`/`gidmap=` (a pod without
/// host users) its files are idmapped: an overlay's lower layers, or
/// anything else once mounted.
fn mount_one(m: &Mount, target: &Path) -> Result<(), String> {
    let (options, idmap) = take_idmap(&m.options)?;
    let Some((uids, gids)) = idmap else {
        return plain(m, &options, target);
    };
    if m.type_ == "overlay" {
        return overlay_idmapped(m, options, target, &uids, &gids);
    }
    // Mounted aside and bound idmapped, so that one mount is at `target`.
    let staging = staging_dir(target)?;
    let mounted = plain(m, &options, &staging).and_then(|()| {
        let bound = bind_idmapped(&staging, target, &uids, &gids).map_err(|e| e.to_string());
        unmount(&staging);
        bound
    });
    let _ = std::fs::remove_dir(&staging);
    mounted
}

/// An empty directory beside `target` for a mount on its way there.
fn staging_dir(target: &Path) -> Result<PathBuf, String> {
    let staging = target.with_file_name("rootfs-staging");
    std::fs::create_dir_all(&staging).map_err(|e| format!("create {}: {e}", staging.display()))?;
    Ok(staging)
}

/// mount(2) reads one page of options; containerd keeps this much spare.
const DATA_MAX: usize = 4096 - 512;

fn plain(m: &Mount, options: &[String], target: &Path) -> Result<(), String> {
    let (flags, data) = flags_and_data(options);
    let kind = match flags.contains(MsFlags::MS_BIND) {
        true => None,
        false => Some(m.type_.as_str()),
    };
    let source = Some(m.source.as_str());
    let too_long = m.type_ == "overlay" && data.len() >= DATA_MAX;
    if let Some((dir, short)) = too_long.then(|| relative_to_common(options)).flatten() {
        let (_, data) = flags_and_data(&short);
        return from_dir(&dir, || {
            mount(source, target, kind, flags, Some(data.as_str()))
        });
    }
    mount(source, target, kind, flags, Some(data.as_str())).map_err(|e| e.to_string())
}

/// An overlay's options with its many layers named relative to their
/// common directory, as containerd shortens them.
fn relative_to_common(options: &[String]) -> Option<(PathBuf, Vec<String>)> {
    let (at, lowers) = lowerdirs(options)?;
    let common = common_dir(&lowers).ok()?;
    let mut short = options.to_vec();
    short[at] = format!(
        "lowerdir={}",
        rebased(&lowers, &common, Path::new("")).join(":")
    );
    Some((common, short))
}

/// Runs `call` on a thread of its own whose working directory is `dir`
/// (the shim's other threads keep theirs).
fn from_dir(dir: &Path, call: impl FnOnce() -> nix::Result<()> + Send) -> Result<(), String> {
    let joined = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(dir)?;
            call()
        })
        .join()
    });
    match joined {
        Ok(done) => done.map_err(|e| format!("{e} (from {})", dir.display())),
        Err(_) => Err("the mounting thread panicked".into()),
    }
}

/// Where `lowerdir=` is among `options`, and its layers.
fn lowerdirs(options: &[String]) -> Option<(usize, Vec<String>)> {
    let at = options.iter().position(|o| o.starts_with("lowerdir="))?;
    let lowers = options[at]["lowerdir=".len()..]
        .split(':')
        .map(String::from);
    Some((at, lowers.collect()))
}

/// An overlay whose lower layers are seen through one idmapped bind of
/// their common directory, as containerd's own mount code does; the bind
/// is detached again once the overlay holds the layers.
fn overlay_idmapped(
    m: &Mount,
    mut options: Vec<String>,
    target: &Path,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), String> {
    let (at, lowers) = lowerdirs(&options).ok_or("an idmapped overlay needs lowerdir=")?;
    let common = common_dir(&lowers)?;
    let staging = staging_dir(target)?;
    let mounted = bind_idmapped(&common, &staging, uids, gids)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            options[at] = format!("lowerdir={}", rebased(&lowers, &common, &staging).join(":"));
            let r = plain(m, &options, target);
            unmount(&staging);
            r
        });
    let _ = std::fs::remove_dir(&staging);
    mounted
}

/// The deepest directory holding every layer.
fn common_dir(lowers: &[String]) -> Result<PathBuf, String> {
    let first = lowers.first().map(String::as_str).unwrap_or_default();
    let shared = lowers.iter().fold(first.len(), |n, l| {
        first
            .bytes()
            .zip(l.bytes())
            .take(n)
            .take_while(|(a, b)| a == b)
            .count()
    });
    // The prefix up to its last '/': a whole directory, as Go's path.Dir.
    let dir = first[..shared].rfind('/').map_or("", |cut| &first[..cut]);
    match dir {
        "" => Err(format!(
            "lower layers {lowers:?} share no directory to idmap"
        )),
        dir => Ok(PathBuf::from(dir)),
    }
}

fn rebased(lowers: &[String], common: &Path, staging: &Path) -> Vec<String> {
    let inside = |l: &String| {
        Path::new(l)
            .strip_prefix(common)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    lowers
        .iter()
        .map(|l| staging.join(inside(l)).display().to_string())
        .collect()
}

/// uid and gid mappings.
type IdMaps = (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>);

/// Takes containerd's `uidmap=` and `gidmap=` options (each
/// `container:host:size[,...]`) out of `options`; both or neither.
fn take_idmap(options: &[String]) -> Result<(Vec<String>, Option<IdMaps>), String> {
    let (mut uids, mut gids, mut rest) = (None, None, Vec::new());
    for o in options {
        if let Some(v) = o.strip_prefix("uidmap=") {
            uids = Some(id_mappings(v)?);
        } else if let Some(v) = o.strip_prefix("gidmap=") {
            gids = Some(id_mappings(v)?);
        } else {
            rest.push(o.clone());
        }
    }
    match (uids, gids) {
        (None, None) => Ok((rest, None)),
        (Some(u), Some(g)) => Ok((rest, Some((u, g)))),
        _ => Err("uidmap= and gidmap= go together".into()),
    }
}

fn id_mappings(value: &str) -> Result<Vec<LinuxIdMapping>, String> {
    value
        .split(',')
        .map(|m| {
            let bad = || format!("bad id mapping {m:?} (container:host:size)");
            let n: Vec<u32> = m
                .split(':')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad())?;
            let [container, host, size] = n[..] else {
                return Err(bad());
            };
            LinuxIdMappingBuilder::default()
                .container_id(container)
                .host_id(host)
                .size(size)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
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
    fn idmap_options_are_taken_out_and_parsed() {
        let opts: Vec<String> = [
            "uidmap=0:1000:65536,65536:0:1",
            "lowerdir=/a",
            "gidmap=0:2000:10",
        ]
        .map(String::from)
        .to_vec();
        let (rest, idmap) = take_idmap(&opts).unwrap();
        assert_eq!(rest, ["lowerdir=/a"]);
        let (uids, gids) = idmap.unwrap();
        assert_eq!((uids.len(), uids[1].host_id(), gids[0].size()), (2, 0, 10));
        assert!(take_idmap(&["uidmap=0:1:1".into()]).is_err());
        assert!(take_idmap(&["uidmap=0:1".into(), "gidmap=0:1:1".into()]).is_err());
    }

    #[test]
    fn lower_layers_are_rebased_on_their_common_directory() {
        let lowers = [
            "/s/snapshots/12/fs",
            "/s/snapshots/13/fs",
            "/s/snapshots/9/fs",
        ]
        .map(String::from);
        let common = common_dir(&lowers).unwrap();
        assert_eq!(common, Path::new("/s/snapshots"));
        let moved = rebased(&lowers, &common, Path::new("/b/rootfs-staging"));
        assert_eq!(
            moved,
            [
                "/b/rootfs-staging/12/fs",
                "/b/rootfs-staging/13/fs",
                "/b/rootfs-staging/9/fs"
            ]
        );
        assert_eq!(common_dir(&["/s/1/fs".into()]).unwrap(), Path::new("/s/1"));
        assert!(common_dir(&["/a/fs".into(), "/b/fs".into()]).is_err());
    }

    #[test]
    fn an_overlay_of_many_layers_is_mounted_from_their_common_directory() {
        // Mounts go into a private mount namespace: the test runs itself
        // again under unshare(1).
        const INSIDE: &str = "BERTH_TEST_IN_MOUNT_NS";
        let name =
            "rootfs::tests::an_overlay_of_many_layers_is_mounted_from_their_common_directory";
        if std::env::var_os(INSIDE).is_none() {
            let exe = std::env::current_exe().unwrap();
            let status = std::process::Command::new("unshare")
                .args(["-m", "--propagation", "private"])
                .arg(exe)
                .args(["--exact", name, "--test-threads=1"])
                .env(INSIDE, "1")
                .status()
                .expect("run unshare");
            assert!(status.success(), "{status}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-shim-layers-{}", std::process::id()));
        let layers = dir
            .join("io.containerd.snapshotter.v1.overlayfs")
            .join("snapshots");
        let lowers: Vec<String> = (0..80)
            .map(|i| {
                let l = layers.join(format!("{i}")).join("fs");
                std::fs::create_dir_all(&l).unwrap();
                std::fs::write(l.join(format!("layer{i}")), "").unwrap();
                l.display().to_string()
            })
            .collect();
        let (upper, work, target) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
        for d in [&upper, &work, &target] {
            std::fs::create_dir_all(d).unwrap();
        }
        let options = vec![
            "index=off".to_string(),
            format!("workdir={}", work.display()),
            format!("upperdir={}", upper.display()),
            format!("lowerdir={}", lowers.join(":")),
        ];
        assert!(flags_and_data(&options).1.len() > 4096);
        let mut m = Mount::new();
        m.type_ = "overlay".into();
        m.source = "overlay".into();
        m.options = options;
        let mounted = mount_all(&[m], &target);
        let seen = target.join("layer0").exists() && target.join("layer79").exists();
        unmount(&target);
        let _ = std::fs::remove_dir_all(&dir);
        mounted.unwrap();
        assert!(seen, "a layer is missing from the overlay");
    }

    #[test]
    fn rw_clears_ro() {
        let (flags, _) = flags_and_data(&["rbind".into(), "ro".into(), "rw".into()]);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }
}
