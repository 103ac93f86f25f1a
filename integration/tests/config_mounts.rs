//! `mounts`, `root`, `maskedPaths`, `readonlyPaths`, `linux.rootfsPropagation`.

use integration::{berth_only, json, s, Bundle, Value};

/// The container's /proc/self/mountinfo line for mount point `target`:
/// (per-mount options, optional fields such as `shared:N`, super options).
fn mountinfo(b: &mut Bundle, target: &str) -> (String, String, String) {
    let line = b.run_sh(&format!(
        "grep -E '^([^ ]+ ){{4}}{target} ' /proc/self/mountinfo | tail -n 1"
    ));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.len() > 6, "no mount at {target}: {line:?}");
    let dash = fields
        .iter()
        .position(|f| *f == "-")
        .expect("mountinfo separator");
    (
        fields[5].to_owned(),
        fields[6..dash].join(" "),
        fields[dash + 3..].join(" "),
    )
}

fn has_options(options: &str, want: &[&str]) -> bool {
    want.iter().all(|w| options.split(',').any(|o| o == *w))
}

#[test]
fn bind_rw_writes_reach_the_host() {
    let mut b = Bundle::new();
    let host = b.host_dir("rw");
    b.bind(&host, "/mnt/rw", &["rw"]);
    b.run_sh("echo written > /mnt/rw/file");
    assert_eq!(
        std::fs::read_to_string(host.join("file")).unwrap(),
        "written\n"
    );
}

#[test]
fn bind_ro_refuses_writes() {
    let mut b = Bundle::new();
    let host = b.host_dir("ro");
    b.bind(&host, "/mnt/ro", &["ro"]);
    assert_eq!(
        b.run_sh("echo x 2>/dev/null > /mnt/ro/file || echo refused"),
        "refused\n"
    );
    assert!(!host.join("file").exists());
}

#[test]
fn bind_mounts_a_single_file() {
    let mut b = Bundle::new();
    let host = b.host_dir("files");
    std::fs::write(host.join("resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    b.bind(&host.join("resolv.conf"), "/etc/resolv.conf", &["ro"]);
    assert_eq!(b.run_sh("cat /etc/resolv.conf"), "nameserver 192.0.2.1\n");
}

#[test]
fn bind_flags_show_in_mountinfo() {
    let mut b = Bundle::new();
    let host = b.host_dir("flags");
    b.bind(&host, "/mnt/flags", &["ro", "nosuid", "nodev", "noexec"]);
    let (options, _, _) = mountinfo(&mut b, "/mnt/flags");
    assert!(
        has_options(&options, &["ro", "nosuid", "nodev", "noexec"]),
        "{options}"
    );
}

/// Mounts a tmpfs at `dir` in the test's mount namespace (a submount for
/// a bind to carry); [`Bundle`]'s drop unmounts it if the test fails.
fn mount_tmpfs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs", s(dir)])
        .status();
    assert!(status.expect("run mount").success(), "mount a tmpfs");
}

fn unmount(dir: &std::path::Path) {
    let status = std::process::Command::new("umount").arg(dir).status();
    assert!(status.expect("run umount").success(), "umount {dir:?}");
}

#[test]
fn rro_makes_the_submounts_of_a_bind_read_only_too() {
    // `ro` on an rbind leaves the submounts it carries writable.
    let mut b = Bundle::new();
    let host = b.host_dir("tree");
    mount_tmpfs(&host.join("sub"));
    b.bind(&host, "/mnt/tree", &["rro"]);
    let out = b.run_sh(
        "touch /mnt/tree/f 2>/dev/null || echo top refused; \
         touch /mnt/tree/sub/f 2>/dev/null || echo sub refused",
    );
    unmount(&host.join("sub"));
    assert_eq!(out, "top refused\nsub refused\n");
    b.assert_no_leftovers();
}

#[test]
fn rnoexec_reaches_the_submounts_of_a_bind() {
    let mut b = Bundle::new();
    let host = b.host_dir("tree");
    mount_tmpfs(&host.join("sub"));
    std::fs::copy(b.rootfs().join("bin/busybox"), host.join("sub/busybox")).unwrap();
    b.bind(&host, "/mnt/tree", &["rnoexec", "rnosuid"]);
    let out = b.run_sh("/mnt/tree/sub/busybox true 2>/dev/null || echo refused");
    unmount(&host.join("sub"));
    assert_eq!(out, "refused\n");
    b.assert_no_leftovers();
}

#[test]
fn tmpfs_gets_size_mode_and_flags() {
    let mut b = Bundle::new();
    let opts = json!(["nosuid", "nodev", "noexec", "size=1m", "mode=1750"]);
    b.mount(json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": opts}));
    let (options, _, super_options) = mountinfo(&mut b, "/mnt/t");
    assert!(
        has_options(&options, &["rw", "nosuid", "nodev", "noexec"]),
        "{options}"
    );
    assert!(
        has_options(&super_options, &["size=1024k", "mode=1750"]),
        "{super_options}"
    );
}

/// A directory `/srv/<name>` of mode `mode` in the image with a tmpfs
/// over it (`options`); the mode the container sees there.
fn tmpfs_mode_over(name: &str, mode: u32, options: Value) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new();
    let dir = b.rootfs().join("srv").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    let dest = format!("/srv/{name}");
    b.mount(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}));
    let out = b.run_sh(&format!("stat -c %A {dest}"));
    b.assert_no_leftovers();
    out
}

#[test]
fn a_tmpfs_takes_the_mode_of_the_directory_it_covers() {
    // An image's /tmp with its sticky and set-id bits keeps them.
    assert_eq!(
        tmpfs_mode_over("tmp", 0o7777, json!(["nosuid"])),
        "drwsrwsrwt\n"
    );
}

#[test]
fn a_tmpfs_shows_the_mode_it_inherits_in_its_mount_options() {
    berth_only!("runc 1.1.5 sets the mode after mounting; runc 1.3 and later mount with mode=");
    let mut b = Bundle::new();
    let dir = b.rootfs().join("srv/inherits");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o710)).unwrap();
    b.mount(json!({"destination": "/srv/inherits", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
    let (options, _, super_options) = mountinfo(&mut b, "/srv/inherits");
    assert!(
        super_options.split(',').any(|o| o == "mode=710"),
        "{options} {super_options}"
    );
}

#[test]
fn a_tmpfs_mode_option_wins_over_the_directory() {
    berth_only!("runc 1.1.5 gives the tmpfs the directory's mode even against an explicit mode=");
    assert_eq!(
        tmpfs_mode_over("private", 0o750, json!(["mode=700"])),
        "drwx------\n"
    );
}

#[test]
fn a_read_only_dev_still_gets_its_mounts_and_devices() {
    // /dev/pts, /dev/shm and /dev/null are made inside /dev after it is
    // mounted: it can only turn read-only once they are there.
    let mut b = Bundle::new();
    b.add_mount_option("/dev", "ro");
    let out = b.run_sh(
        "touch /dev/new 2>/dev/null || echo refused; echo x > /dev/null && echo null; \
         grep -c -E ' /dev/(pts|shm|mqueue) ' /proc/self/mountinfo",
    );
    assert_eq!(out, "refused\nnull\n3\n");
    let (options, _, _) = mountinfo(&mut b, "/dev");
    assert!(has_options(&options, &["ro", "nosuid"]), "{options}");
    b.assert_no_leftovers();
}

#[test]
fn tmpcopyup_starts_the_tmpfs_with_the_directory_contents() {
    let mut b = Bundle::new();
    let data = b.rootfs().join("srv/data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/file"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("sub/file", data.join("link")).unwrap();
    std::os::unix::fs::chown(data.join("sub"), Some(1000), Some(1000)).unwrap();
    let opts = json!(["tmpcopyup", "nosuid"]);
    b.mount(
        json!({"destination": "/srv/data", "type": "tmpfs", "source": "tmpfs", "options": opts}),
    );
    let out = b.run_sh(
        "cat /srv/data/link; stat -c '%u:%g' /srv/data/sub; echo new > /srv/data/sub/file; \
         grep ' /srv/data ' /proc/self/mountinfo | grep -c tmpfs",
    );
    assert_eq!(out, "from the image\n1000:1000\n1\n");
    let on_host = std::fs::read_to_string(data.join("sub/file")).unwrap();
    assert_eq!(on_host, "from the image\n", "the write reached the image");
}

#[test]
fn mounts_are_applied_in_order() {
    // The bind lands inside the tmpfs only if the tmpfs is mounted first.
    let mut b = Bundle::new();
    let host = b.host_dir("inner");
    std::fs::write(host.join("marker"), "inner\n").unwrap();
    b.mount(json!({"destination": "/mnt/outer", "type": "tmpfs", "source": "tmpfs"}));
    b.bind(&host, "/mnt/outer/inner", &[]);
    assert_eq!(b.run_sh("cat /mnt/outer/inner/marker"), "inner\n");
}

/// `<rootfs>/mnt` holds a host directory with `file` reading "host";
/// then `<rootfs>/mnt` is bound again at `/final`, naming both the source
/// and the destination by their host paths below the rootfs, as runc's
/// users (and its suite) write them.
fn bind_through_the_rootfs(b: &mut Bundle) -> String {
    let host = b.host_dir("host");
    std::fs::write(host.join("file"), "host\n").unwrap();
    b.bind(&host, "/mnt", &[]);
    let rootfs = b.rootfs();
    // As in an image; a user namespace's root could not make them.
    for dir in ["mnt", "final"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    b.bind(&rootfs.join("mnt"), s(&rootfs.join("final")), &[]);
    b.run_sh("cat /final/file")
}

#[test]
fn a_bind_source_below_the_rootfs_shows_the_mounts_made_before_it() {
    let mut b = Bundle::new();
    assert_eq!(bind_through_the_rootfs(&mut b), "host\n");
}

#[test]
fn a_destination_below_the_rootfs_is_made_there_once() {
    berth_only!("runc 1.1.5 makes <rootfs><rootfs>/new, then fails to open <rootfs>/new");
    let mut b = Bundle::new();
    let host = b.host_dir("host");
    std::fs::write(host.join("file"), "host\n").unwrap();
    let rootfs = b.rootfs();
    b.bind(&host, s(&rootfs.join("new")), &[]);
    assert_eq!(b.run_sh("cat /new/file"), "host\n");
    let twice = rootfs.join(rootfs.strip_prefix("/").unwrap());
    assert!(!twice.exists(), "{} was made", twice.display());
}

#[test]
fn a_bind_source_below_the_rootfs_shows_earlier_mounts_in_a_user_namespace() {
    berth_only!("runc 1.1.5 clones every source before the mounts; runc 1.2+ does as berth");
    let mut b = Bundle::new();
    b.in_user_namespace();
    assert_eq!(bind_through_the_rootfs(&mut b), "host\n");
}

#[test]
fn default_mounts_have_their_types() {
    let mut b = Bundle::new();
    let out = b.run_sh("cat /proc/self/mountinfo");
    let has = |target: &str, fstype: &str| {
        out.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dash = f.iter().position(|x| *x == "-").unwrap();
            f[4] == target && f[dash + 1] == fstype
        })
    };
    let expected = [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ];
    for (target, fstype) in expected {
        assert!(has(target, fstype), "no {fstype} at {target}:\n{out}");
    }
    let cgroup = out
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup") && l.contains(" - cgroup"));
    assert!(cgroup, "no cgroup filesystem under /sys/fs/cgroup:\n{out}");
}

#[test]
fn shared_propagation_shows_in_mountinfo() {
    let mut b = Bundle::new();
    let host = b.host_dir("shared");
    b.bind(&host, "/mnt/shared", &["rshared"]);
    let (_, optional, _) = mountinfo(&mut b, "/mnt/shared");
    assert!(optional.starts_with("shared:"), "{optional:?}");
}

#[test]
fn rshared_mounts_reach_the_host_and_back() {
    // Kubernetes' Bidirectional mount propagation. In a private mount
    // namespace of the test, standing for the host: a shared directory,
    // bound into the container; the container mounts a tmpfs in it and
    // waits for the test to mount one too.
    let mut b = Bundle::new();
    let shared = b.host_dir("shared");
    std::fs::create_dir_all(shared.join("in")).unwrap();
    std::fs::create_dir_all(shared.join("out")).unwrap();
    b.bind(&shared, "/mnt/shared", &["rshared"])
        .set("/linux/rootfsPropagation", json!("rshared"))
        .grant("CAP_SYS_ADMIN")
        .sh(
            "mount -t tmpfs inside /mnt/shared/in && touch /mnt/shared/in/ready; \
             i=0; while [ ! -e /mnt/shared/out/ready ] && [ $i -lt 300 ]; do \
               sleep 0.1; i=$((i+1)); done; \
             grep -q ' /mnt/shared/out ' /proc/self/mountinfo && echo container sees out",
        );
    let out = b.in_private_mount_ns(&format!(
        "S={shared}; mount --bind $S $S && mount --make-shared $S || exit; \
         $RT run --bundle $BUNDLE $ID > run.out & \
         i=0; while [ ! -e $S/in/ready ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         grep -q \" $S/in \" /proc/self/mountinfo && echo host sees in; \
         mount -t tmpfs outside $S/out && touch $S/out/ready; \
         wait; cat run.out",
        shared = s(&shared)
    ));
    assert_eq!(out.stdout, "host sees in\ncontainer sees out\n", "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn unbindable_propagation_shows_in_mountinfo() {
    let mut b = Bundle::new();
    let host = b.host_dir("unbindable");
    b.bind(&host, "/mnt/unbindable", &["runbindable"]);
    let (_, optional, _) = mountinfo(&mut b, "/mnt/unbindable");
    assert_eq!(optional, "unbindable");
}

#[test]
fn rootfs_propagation_applies_to_the_root() {
    berth_only!("runc 1.1.5 applies rootfsPropagation to the mounts around the rootfs before pivot_root; inside, / stays private");
    let mut b = Bundle::new();
    b.set("/linux/rootfsPropagation", json!("shared"));
    let (_, optional, _) = mountinfo(&mut b, "/");
    assert!(optional.starts_with("shared:"), "{optional:?}");
}

#[test]
fn root_readonly_refuses_writes() {
    let mut b = Bundle::new();
    b.set("/root/readonly", json!(true));
    assert_eq!(
        b.run_sh("touch /file 2>/dev/null || echo refused"),
        "refused\n"
    );
    assert!(!b.rootfs().join("file").exists());
}

#[test]
fn root_writable_when_not_readonly() {
    let mut b = Bundle::new();
    b.set("/root/readonly", json!(false));
    b.run_sh("echo hi > /file");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("file")).unwrap(),
        "hi\n"
    );
}

#[test]
fn root_path_may_be_absolute() {
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    b.set("/root/path", json!(rootfs));
    b.create().assert_ok();
    assert_eq!(b.state_json()["rootfs"], s(&rootfs));
}

#[test]
fn masked_paths_hide_files_and_directories() {
    let mut b = Bundle::new();
    std::fs::write(b.rootfs().join("secret-file"), "s3cret").unwrap();
    std::fs::create_dir(b.rootfs().join("secret-dir")).unwrap();
    std::fs::write(b.rootfs().join("secret-dir/inside"), "s3cret").unwrap();
    b.set("/linux/maskedPaths", json!(["/secret-file", "/secret-dir"]));
    assert_eq!(
        b.run_sh("cat /secret-file; ls -A /secret-dir; echo end"),
        "end\n"
    );
}

#[test]
fn a_path_masked_twice_is_masked_once() {
    berth_only!("runc 1.1.5 mounts it twice; runc 1.3 and later once");
    let mut b = Bundle::new();
    std::fs::create_dir(b.rootfs().join("twice")).unwrap();
    b.set("/linux/maskedPaths", json!(["/twice", "/twice"]));
    assert_eq!(b.run_sh("grep -c ' /twice ' /proc/self/mountinfo"), "1\n");
}

#[test]
fn masked_directories_share_one_read_only_tmpfs() {
    berth_only!("runc 1.1.5 mounts a tmpfs each; runc 1.3 and later share one");
    let mut b = Bundle::new();
    for d in ["one", "two", "three"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    b.set("/linux/maskedPaths", json!(["/one", "/two", "/three"]));
    let out = b.run_sh(
        "stat -c %d /one /two /three | uniq | wc -l; touch /two/f 2>/dev/null || echo refused",
    );
    assert_eq!(out, "1\nrefused\n");
}

#[test]
fn readonly_paths_refuse_writes() {
    let mut b = Bundle::new();
    std::fs::create_dir(b.rootfs().join("frozen")).unwrap();
    b.set("/root/readonly", json!(false))
        .set("/linux/readonlyPaths", json!(["/frozen"]));
    let out = b.run_sh("touch /frozen/f 2>/dev/null || echo refused; touch /thawed && echo wrote");
    assert_eq!(out, "refused\nwrote\n");
}

/// Whether this kernel idmaps mounts of `dir`'s filesystem: tmpfs only
/// since Linux 6.3 (the QEMU guest's 6.1 cannot); the others berth's tests
/// run on (ext4) since 5.12.
fn idmappable(dir: &std::path::Path) -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", s(dir)])
        .output()
        .expect("stat -f");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let kernel = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    String::from_utf8_lossy(&out.stdout).trim() != "tmpfs" || kernel >= (6, 3)
}

/// Where `dir` cannot be idmapped, checks that `b`'s create is refused
/// naming the mount and leaves nothing, and says so.
fn refused_where_unidmappable(b: &Bundle, dir: &std::path::Path) -> bool {
    if idmappable(dir) {
        return false;
    }
    b.create().assert_failed().assert_mentions("/idm (idmap)");
    b.assert_no_leftovers();
    true
}

/// `b` with host directory `idm` (a file `f` of root's in it) bound at
/// /idm with `options`, and `mount` merged into that mount.
fn idmapped_bind(b: &mut Bundle, options: &[&str], mount: Value) -> std::path::PathBuf {
    let dir = b.host_dir("idm");
    std::fs::write(dir.join("f"), "x").unwrap();
    let mut m =
        json!({"destination": "/idm", "type": "bind", "source": s(&dir), "options": options});
    m.as_object_mut()
        .unwrap()
        .extend(mount.as_object().unwrap().clone());
    b.mount(m);
    dir
}

#[test]
fn an_idmapped_bind_shows_files_with_the_mounts_owners() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let mut b = Bundle::new();
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let dir = idmapped_bind(
        &mut b,
        &["bind", "idmap"],
        json!({"uidMappings": map, "gidMappings": map}),
    );
    if refused_where_unidmappable(&b, &dir) {
        return;
    }
    // Root's file shows as 1000's on the mount; root itself, unmapped
    // there, can make no file (EOVERFLOW).
    let out = b.run_sh("stat -c '%u %g' /idm/f; touch /idm/new 2>/dev/null || echo refused");
    assert_eq!(out, "1000 1000\nrefused\n");
}

#[test]
fn idmap_without_mappings_takes_the_user_namespaces() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let mut b = Bundle::new();
    b.in_user_namespace();
    let dir = idmapped_bind(&mut b, &["rbind", "ridmap"], json!({}));
    // The container's root may not make it in the host root's rootfs.
    std::fs::create_dir_all(b.rootfs().join("idm")).unwrap();
    if refused_where_unidmappable(&b, &dir) {
        return;
    }
    // Without the idmap root's file would be nobody's (65534) in there.
    assert_eq!(b.run_sh("stat -c '%u %g' /idm/f"), "0 0\n");
}
