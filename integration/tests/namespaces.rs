//! `linux.namespaces` (new or joined by path), user namespace mappings,
//! `hostname`, `domainname`, `linux.sysctl`.

use integration::{berth_only, json, ns_inode, Bundle, ConsoleSocket, NsFile, Value};
use std::path::Path;

/// Adds a namespace of OCI type `kind` unless the config already has one.
fn add_namespace(b: &mut Bundle, ns: Value) {
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != ns["type"]);
        list.push(ns);
    });
}

/// The inode of the container's namespace `proc_name` (a /proc/self/ns entry).
fn inode_inside(b: &mut Bundle, proc_name: &str) -> u64 {
    let link = b.run_sh(&format!("readlink /proc/self/ns/{proc_name}"));
    let number = link
        .trim()
        .rsplit('[')
        .next()
        .and_then(|n| n.strip_suffix(']'));
    number
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("odd namespace link {link:?}"))
}

fn assert_new(b: &mut Bundle, proc_name: &str) {
    let host = ns_inode(Path::new(&format!("/proc/self/ns/{proc_name}")));
    assert_ne!(
        inode_inside(b, proc_name),
        host,
        "{proc_name} namespace is the host's"
    );
}

#[test]
fn new_mount_namespace() {
    assert_new(&mut Bundle::new(), "mnt");
}

#[test]
fn new_pid_namespace() {
    let mut b = Bundle::new();
    assert_new(&mut b, "pid");
    assert_eq!(b.run_sh("echo $$"), "1\n", "the process is PID 1");
}

#[test]
fn new_network_namespace() {
    let mut b = Bundle::new();
    assert_new(&mut b, "net");
    assert_eq!(b.run_sh("ls /sys/class/net"), "lo\n", "only loopback");
}

#[test]
fn new_ipc_namespace() {
    assert_new(&mut Bundle::new(), "ipc");
}

#[test]
fn new_uts_namespace() {
    assert_new(&mut Bundle::new(), "uts");
}

#[test]
fn new_cgroup_namespace() {
    let mut b = Bundle::new();
    add_namespace(&mut b, json!({"type": "cgroup"}));
    assert_new(&mut b, "cgroup");
}

#[test]
fn new_time_namespace() {
    berth_only!("runc 1.1 does not know the time namespace");
    let mut b = Bundle::new();
    add_namespace(&mut b, json!({"type": "time"}));
    assert_new(&mut b, "time");
}

#[test]
fn new_user_namespace_maps_ids() {
    let mut b = Bundle::new();
    b.in_user_namespace();
    assert_new(&mut b, "user");
    let maps = b.run_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u");
    let maps: Vec<String> = maps
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(maps, ["0 100000 65536", "0 100000 65536", "0"]);
}

/// Asserts that `b`, in a user namespace whose root is host uid 100000,
/// gets bind sources that a 0700 directory of host root keeps that uid
/// out of: the runtime takes each source before it enters the namespace.
fn assert_binds_from_a_directory_only_host_root_may_enter(mut b: Bundle) {
    use std::os::unix::fs::PermissionsExt;
    let private = b.host_dir("private");
    std::fs::create_dir(private.join("vol")).unwrap();
    std::fs::write(private.join("vol/file"), "hello\n").unwrap();
    std::fs::write(private.join("single.conf"), "single file\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The mapped root may not make them in the host's rootfs either.
    std::fs::create_dir_all(b.rootfs().join("mnt/vol")).unwrap();
    std::fs::write(b.rootfs().join("etc/single.conf"), "").unwrap();
    b.bind(&private.join("vol"), "/mnt/vol", &["ro"]).bind(
        &private.join("single.conf"),
        "/etc/single.conf",
        &[],
    );
    let out = b.run_sh(
        "cat /mnt/vol/file /etc/single.conf; \
         touch /mnt/vol/new 2>/dev/null || echo read-only",
    );
    assert_eq!(out, "hello\nsingle file\nread-only\n");
    b.assert_no_leftovers();
}

#[test]
fn a_bind_source_only_host_root_may_reach_is_mounted_in_a_user_namespace() {
    let mut b = Bundle::new();
    b.in_user_namespace();
    assert_binds_from_a_directory_only_host_root_may_enter(b);
}

#[test]
fn a_bind_source_only_host_root_may_reach_is_mounted_in_a_joined_user_namespace() {
    // A pod's containers (Kubernetes' hostUsers: false) join the user
    // namespace of its sandbox; their volumes are below containerd's 0700
    // state directory.
    berth_only!("runc 1.1.5 wants uidMappings even for a joined user namespace");
    let mut first = Bundle::new();
    first.in_user_namespace();
    let pid = start_sleeper(&mut first);
    let mut b = Bundle::new();
    let path = format!("/proc/{pid}/ns/user");
    add_namespace(&mut b, json!({"type": "user", "path": path}));
    assert_binds_from_a_directory_only_host_root_may_enter(b);
    first.delete(&["--force"]).assert_ok();
}

#[test]
fn a_bind_in_a_user_namespace_gives_the_host_none_of_its_mounts() {
    // In a private mount namespace of the test, standing for a host whose
    // mounts are shared (systemd's): a shared directory bound into a
    // container with a user namespace. What the container mounts in it
    // stays in the container; what the host mounts there reaches it.
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new();
    b.in_user_namespace();
    let shared = b.host_dir("shared");
    std::fs::create_dir_all(shared.join("in")).unwrap();
    std::fs::create_dir_all(shared.join("out")).unwrap();
    std::fs::create_dir_all(b.rootfs().join("mnt/shared")).unwrap();
    // The container's root (host uid 100000) says it has mounted here.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    b.bind(&shared, "/mnt/shared", &["rbind"])
        .grant("CAP_SYS_ADMIN")
        .sh(
            "mount -t tmpfs inside /mnt/shared/in && touch /mnt/shared/mounted; \
             i=0; while [ ! -e /mnt/shared/out/ready ] && [ $i -lt 300 ]; do \
               sleep 0.1; i=$((i+1)); done; \
             grep -q ' /mnt/shared/out ' /proc/self/mountinfo && echo container sees out",
        );
    let out = b.in_private_mount_ns(&format!(
        "S={shared}; mount --bind $S $S && mount --make-shared $S || exit; \
         $RT run --bundle $BUNDLE $ID > run.out & \
         i=0; while [ ! -e $S/mounted ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         grep -q \" $S/in \" /proc/self/mountinfo && echo host sees in; \
         mount -t tmpfs outside $S/out && touch $S/out/ready; \
         wait; cat run.out",
        shared = integration::s(&shared)
    ));
    assert_eq!(out.stdout, "container sees out\n", "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn namespace_left_out_is_the_hosts() {
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network")
    });
    assert_eq!(
        inode_inside(&mut b, "net"),
        ns_inode(Path::new("/proc/self/ns/net"))
    );
}

/// The config without a mount namespace, and without the mounts, masked
/// and read-only paths and read-only root that would need one.
fn without_mount_namespace(b: &mut Bundle) {
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        c["mounts"] = json!([]);
        c["root"]["readonly"] = json!(false);
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("maskedPaths");
        linux.remove("readonlyPaths");
    });
}

/// In a private mount namespace of the test (a runtime that pivoted the
/// caller's root would wreck only that one): a /proc in the rootfs, as
/// the caller provides it (runc needs one and may not mount it), the
/// caller's mount namespace, `run`, and whether the caller's root is
/// still the host's.
const RUN_THEN_LOOK_AT_THE_ROOT: &str = "mount -t proc proc $BUNDLE/rootfs/proc || exit; \
     echo \"caller $(readlink /proc/self/ns/mnt)\"; \
     $RT run --bundle $BUNDLE $ID; echo \"exit $?\"; \
     test -e $BUNDLE/config.json && echo caller root intact";

#[test]
fn without_a_mount_namespace_the_process_is_jailed_by_chroot() {
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    std::fs::write(b.rootfs().join("in-the-rootfs"), "").unwrap();
    b.sh("ls /in-the-rootfs; echo \"container $(readlink /proc/self/ns/mnt)\"");
    let out = b.in_private_mount_ns(RUN_THEN_LOOK_AT_THE_ROOT);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    assert_eq!(lines[1], "/in-the-rootfs", "{out:?}");
    let ns = lines[0]
        .strip_prefix("caller ")
        .expect("the caller's namespace");
    assert_eq!(lines[2], format!("container {ns}"), "{out:?}");
    assert_eq!(lines[3..], ["exit 0", "caller root intact"], "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn without_a_mount_namespace_an_exec_is_jailed_too() {
    berth_only!("runc 1.1.5 runs an exec'd process at the caller's root when the container has no mount namespace");
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    std::fs::write(b.rootfs().join("in-the-rootfs"), "").unwrap();
    b.set("/process/args", json!(["sleep", "600"]));
    let out = b.in_private_mount_ns(
        "mount -t proc proc $BUNDLE/rootfs/proc || exit; \
         $RT create --bundle $BUNDLE $ID && $RT start $ID && \
         $RT exec $ID ls /in-the-rootfs; $RT delete --force $ID",
    );
    assert_eq!(out.stdout, "/in-the-rootfs\n", "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn without_a_mount_namespace_the_callers_mounts_are_left_alone() {
    berth_only!("runc 1.1.5 makes the caller's / rslave and binds the rootfs onto itself in the caller's mount namespace");
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    b.sh("true");
    let out = b.in_private_mount_ns(
        "mount -t proc proc $BUNDLE/rootfs/proc || exit; \
         before=$(cat /proc/self/mountinfo); $RT run --bundle $BUNDLE $ID; \
         test \"$before\" = \"$(cat /proc/self/mountinfo)\" && echo unchanged",
    );
    assert_eq!(out.stdout, "unchanged\n", "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn without_a_mount_namespace_masked_paths_are_refused() {
    // They would be mounted over the caller's own /proc.
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    b.set("/linux/maskedPaths", json!(["/proc/kcore"]))
        .sh("echo started");
    let out = b.in_private_mount_ns(RUN_THEN_LOOK_AT_THE_ROOT);
    assert!(!out.stdout.contains("started"), "{out:?}");
    assert!(out.stdout.contains("caller root intact"), "{out:?}");
    assert!(!out.stdout.contains("exit 0"), "{out:?}");
    integration::berth_message(
        &out,
        "linux.maskedPaths",
        "runc says \"unable to restrict sys entries without a private MNT namespace\"",
    );
    b.assert_no_leftovers();
}

#[test]
fn without_a_mount_namespace_mounts_are_refused() {
    berth_only!(
        "runc 1.1.5 mounts them in the caller's mount namespace, where they outlive the container"
    );
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    b.mount(json!({"destination": "/proc", "type": "proc", "source": "proc"}))
        .sh("echo started");
    let out = b.in_private_mount_ns(RUN_THEN_LOOK_AT_THE_ROOT);
    let lines: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(lines, ["exit 1", "caller root intact"], "{out:?}");
    out.assert_mentions("mounts: needs a mount namespace");
    b.assert_no_leftovers();
}

#[test]
fn without_a_mount_namespace_a_terminal_comes_from_the_callers_devpts() {
    // The caller provides /dev (here a devpts of the test's own); the
    // runtime may mount nothing, not even /dev/console.
    berth_only!("runc 1.1.5 makes the caller's / rslave and binds the rootfs onto itself in the caller's mount namespace");
    let mut b = Bundle::new();
    without_mount_namespace(&mut b);
    b.set("/process/terminal", json!(true))
        .sh("tty; test -e /dev/console || echo no-console");
    let console = ConsoleSocket::listen(&b.path.join("console.sock"));
    let out = b.in_private_mount_ns(
        "mount -t proc proc $BUNDLE/rootfs/proc || exit; \
         mkdir -p $BUNDLE/rootfs/dev/pts && \
         mount -t devpts -o newinstance,ptmxmode=0666 devpts $BUNDLE/rootfs/dev/pts && \
         ln -sf pts/ptmx $BUNDLE/rootfs/dev/ptmx || exit; \
         before=$(cat /proc/self/mountinfo); \
         $RT create --bundle $BUNDLE --console-socket $BUNDLE/console.sock $ID && $RT start $ID; \
         echo \"exit $?\"; sleep 1; $RT delete --force $ID; \
         test \"$before\" = \"$(cat /proc/self/mountinfo)\" && echo no-new-mounts; \
         echo \"$before\" | diff - /proc/self/mountinfo >&2",
    );
    assert_eq!(out.stdout, "exit 0\nno-new-mounts\n", "{out:?}");
    assert_eq!(console.output(), "/dev/pts/0\nno-console\n");
    b.assert_no_leftovers();
}

/// Makes a namespace with `unshare --<unshare_kind>=FILE`, has the container
/// join it by path, and checks the container is in it.
fn assert_joins(oci_type: &str, unshare_kind: &str, proc_name: &str) {
    let mut b = Bundle::new();
    let ns = NsFile::new(&b, unshare_kind);
    add_namespace(&mut b, json!({"type": oci_type, "path": ns.path}));
    // The spec template's hostname is tested with a joined UTS namespace
    // on its own, below.
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    assert_eq!(inode_inside(&mut b, proc_name), ns_inode(&ns.path));
    b.assert_no_leftovers();
}

#[test]
fn joins_a_network_namespace_by_path() {
    assert_joins("network", "net", "net");
}

#[test]
fn joins_an_ipc_namespace_by_path() {
    assert_joins("ipc", "ipc", "ipc");
}

#[test]
fn joins_a_uts_namespace_by_path() {
    assert_joins("uts", "uts", "uts");
}

#[test]
fn joins_a_cgroup_namespace_by_path() {
    assert_joins("cgroup", "cgroup", "cgroup");
}

#[test]
fn joins_a_time_namespace_by_path() {
    berth_only!("runc 1.1 does not know the time namespace");
    assert_joins("time", "time", "time");
}

/// Starts `sleep 600` in `b` and returns its pid (host view).
fn start_sleeper(b: &mut Bundle) -> i64 {
    b.set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    b.state_json()["pid"].as_i64().unwrap()
}

#[test]
fn joins_the_user_namespace_of_a_running_container() {
    berth_only!("runc 1.1.5 wants uidMappings even for a joined user namespace");
    // Containers of one pod share a user namespace: the second gets the
    // first one's mappings without giving its own.
    let mut first = Bundle::new();
    first.in_user_namespace();
    let pid = start_sleeper(&mut first);
    let mut second = Bundle::new();
    let path = format!("/proc/{pid}/ns/user");
    add_namespace(&mut second, json!({"type": "user", "path": path}));
    let (inside, want) = (
        inode_inside(&mut second, "user"),
        ns_inode(Path::new(&path)),
    );
    let maps = second.run_sh("cat /proc/self/uid_map");
    first.delete(&["--force"]).assert_ok();
    assert_eq!(inside, want);
    let maps = maps.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(maps, "0 100000 65536");
}

#[test]
fn joins_a_user_namespace_and_a_network_namespace_it_does_not_own() {
    berth_only!("runc 1.1.5 joins the user namespace first, and the host's netns is then refused");
    let mut first = Bundle::new();
    first.in_user_namespace();
    let pid = start_sleeper(&mut first);
    let mut second = Bundle::new();
    let net = NsFile::new(&second, "net");
    add_namespace(
        &mut second,
        json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}),
    );
    add_namespace(&mut second, json!({"type": "network", "path": net.path}));
    // sysfs wants rights over the netns, which the user namespace lacks:
    // the host's /sys is bound instead, and brings its cgroup mounts (a
    // cgroup2 mount over them would be busy).
    second.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts {
            if m["type"] == "sysfs" {
                *m = json!({"destination": m["destination"], "type": "bind",
                            "source": "/sys", "options": ["rbind"]});
            }
        }
    });
    let inside = inode_inside(&mut second, "net");
    first.delete(&["--force"]).assert_ok();
    assert_eq!(inside, ns_inode(&net.path));
}

#[test]
fn joins_the_pid_namespace_of_a_running_container() {
    // Sharing a pid namespace (docker run --pid container:X, a pod):
    // the second container sees the first one's process and is not pid 1.
    let mut first = Bundle::new();
    let pid = start_sleeper(&mut first);
    let mut second = Bundle::new();
    let path = format!("/proc/{pid}/ns/pid");
    add_namespace(&mut second, json!({"type": "pid", "path": path}));
    let out = second.run_sh("ps -o args; echo pid=$$");
    first.delete(&["--force"]).assert_ok();
    assert!(out.lines().any(|l| l.trim() == "sleep 600"), "{out}");
    assert!(!out.contains("pid=1\n"), "{out}");
}

#[test]
fn hostname_is_set() {
    let mut b = Bundle::new();
    b.set("/hostname", json!("box-under-test"));
    assert_eq!(b.run_sh("hostname"), "box-under-test\n");
}

#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    // A joined namespace is still the container's own, not the host's.
    let mut b = Bundle::new();
    let ns = NsFile::new(&b, "uts");
    add_namespace(&mut b, json!({"type": "uts", "path": ns.path}));
    b.set("/hostname", json!("joined-uts"));
    assert_eq!(b.run_sh("hostname"), "joined-uts\n");
}

#[test]
fn domainname_is_set() {
    berth_only!("runc 1.1.5 ignores domainname (the container shows \"(none)\")");
    let mut b = Bundle::new();
    b.set("/domainname", json!("example.test"));
    assert_eq!(
        b.run_sh("cat /proc/sys/kernel/domainname"),
        "example.test\n"
    );
}

#[test]
fn net_sysctl_is_set_in_the_new_network_namespace() {
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host.trim() == "1" { "0" } else { "1" };
    let mut b = Bundle::new();
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": want}));
    assert_eq!(b.run_sh("cat /proc/sys/net/ipv4/ip_forward").trim(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host,
        "the host's is untouched"
    );
}

#[test]
fn net_sysctl_is_set_in_a_joined_network_namespace() {
    // As podman does: the network namespace is made first, then joined.
    let mut b = Bundle::new();
    let ns = NsFile::new(&b, "net");
    add_namespace(&mut b, json!({"type": "network", "path": ns.path}));
    b.set("/linux/sysctl", json!({"net.ipv4.ping_group_range": "0 0"}));
    let range = b.run_sh("cat /proc/sys/net/ipv4/ping_group_range");
    assert_eq!(range.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
}

#[test]
fn ipc_sysctl_is_set_in_the_new_ipc_namespace() {
    let mut b = Bundle::new();
    b.set("/linux/sysctl", json!({"kernel.msgmax": "4242"}));
    assert_eq!(b.run_sh("cat /proc/sys/kernel/msgmax"), "4242\n");
}

#[test]
fn an_empty_namespace_path_means_a_new_namespace() {
    let mut b = Bundle::new();
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            ns["path"] = json!("");
        }
    });
    assert_eq!(b.run_sh("echo $$"), "1\n", "a new pid namespace");
    assert_new(&mut b, "mnt");
}

/// Both clocks set forward, as runc's suite sets them.
fn time_offsets() -> Value {
    json!({"monotonic": {"secs": 7881, "nanosecs": 2718281},
           "boottime": {"secs": 1337, "nanosecs": 3141519}})
}

#[test]
fn time_offsets_set_the_clocks_of_a_new_time_namespace() {
    berth_only!("runc 1.1.5 does not know linux.timeOffsets");
    let mut b = Bundle::new();
    assert_clocks_set(&mut b);
}

#[test]
fn time_offsets_set_the_clocks_in_a_new_user_namespace_too() {
    berth_only!("runc 1.1.5 does not know linux.timeOffsets");
    let mut b = Bundle::new();
    b.in_user_namespace();
    assert_clocks_set(&mut b);
}

fn assert_clocks_set(b: &mut Bundle) {
    add_namespace(b, json!({"type": "time"}));
    b.set("/linux/timeOffsets", time_offsets());
    let out = b.run_sh("cat /proc/self/timens_offsets");
    let mut lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            ["boottime", "1337", "3141519"],
            ["monotonic", "7881", "2718281"]
        ],
        "{out}"
    );
}

#[test]
fn time_offsets_without_a_new_time_namespace_are_refused() {
    berth_only!("runc 1.1.5 does not know linux.timeOffsets");
    let mut b = Bundle::new();
    b.set("/linux/timeOffsets", time_offsets());
    b.create()
        .assert_failed()
        .assert_mentions("linux.timeOffsets");
    b.assert_no_leftovers();
    add_namespace(&mut b, json!({"type": "time"}));
    b.set("/linux/timeOffsets", json!({"realtime": {"secs": 1}}));
    b.create()
        .assert_failed()
        .assert_mentions("linux.timeOffsets.realtime");
    b.assert_no_leftovers();
}
