//! Containers that try to reach the host. Each scenario is an attack a
//! malicious image or config can make; each asserts it fails and the host
//! is untouched.

use integration::{berth_only, give_fd3, json, s, Bundle, Out};

/// Where a process started with `cwd` says it is, or its failure.
fn cwd_of(b: &mut Bundle, cwd: &str) -> Out {
    b.set("/process/cwd", json!(cwd)).sh("pwd");
    b.run()
}

/// A cwd outside the root has no path below it: getcwd fails or names it
/// "(unreachable)".
#[track_caller]
fn assert_inside(out: &Out, cwd: &str) {
    if out.code == 0 {
        assert!(
            out.stdout.starts_with('/'),
            "{cwd} left the container: {out:?}"
        );
    }
}

#[test]
fn a_cwd_through_the_runtimes_descriptors_stays_inside() {
    // CVE-2024-21626: the runtime's own open directories, reached through
    // /proc/self/fd before the process execs.
    for n in 3..12 {
        for cwd in [
            format!("/proc/self/fd/{n}"),
            format!("/proc/self/fd/{n}/.."),
        ] {
            let mut b = Bundle::new();
            assert_inside(&cwd_of(&mut b, &cwd), &cwd);
            b.assert_no_leftovers();
        }
    }
}

/// A started container whose init sleeps, for exec to enter.
fn running_sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    b
}

#[test]
fn an_exec_cwd_through_the_runtimes_descriptors_stays_inside() {
    let b = running_sleeper();
    for n in 3..12 {
        for cwd in [
            format!("/proc/self/fd/{n}"),
            format!("/proc/self/fd/{n}/.."),
        ] {
            let out = b.rt(&["exec", "--cwd", &cwd, &b.id, "pwd"]);
            assert_inside(&out, &cwd);
        }
    }
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn a_cwd_through_a_passed_host_directory_is_refused() {
    // The same escape with a host directory the caller passed on purpose
    // (--preserve-fds): the process must still not start outside.
    let mut b = Bundle::new();
    let host = std::fs::File::open(b.host_dir("host-side")).unwrap();
    b.set("/process/cwd", json!("/proc/self/fd/3")).sh("pwd");
    let mut cmd = b.command();
    cmd.args(["run", "--preserve-fds", "1", "--bundle", s(&b.path), &b.id]);
    give_fd3(&mut cmd, &host);
    let out = b.output(&mut cmd);
    out.assert_failed();
    integration::berth_message(&out, "outside the container", "runc words it its own way");
    b.assert_no_leftovers();
}

/// Runs a container with `mount` added, which must be refused before the
/// process starts; returns what `run` did.
#[track_caller]
fn refused_mount(b: &mut Bundle, mount: integration::Value) -> Out {
    b.mount(mount).sh("echo started");
    let out = b.run();
    out.assert_failed();
    assert_eq!(out.stdout, "", "the container started: {out:?}");
    out
}

#[test]
fn proc_cannot_be_covered_by_another_filesystem() {
    // CVE-2019-16884: a fake /proc hides what the runtime writes there.
    let mut b = Bundle::new();
    let out = refused_mount(
        &mut b,
        json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
    );
    integration::berth_message(&out, "proc filesystem", "runc words it its own way");
    b.assert_no_leftovers();
}

#[test]
fn nothing_but_informational_files_is_mounted_inside_proc() {
    // A host directory over /proc/sys would make the kernel's knobs
    // writable from the container.
    let mut b = Bundle::new();
    let host = b.host_dir("fake-sys");
    let out = refused_mount(
        &mut b,
        json!({"destination": "/proc/sys", "type": "bind", "source": host, "options": ["rbind"]}),
    );
    integration::berth_message(&out, "inside /proc", "runc words it its own way");
    b.assert_no_leftovers();
}

#[test]
fn a_symlink_to_proc_in_the_image_counts_as_proc() {
    berth_only!("runc 1.1.5 checks the destination before resolving the image's symlinks, and mounts over /proc/sys");
    let mut b = Bundle::new();
    std::os::unix::fs::symlink("/proc", b.rootfs().join("not-proc")).unwrap();
    let out = refused_mount(
        &mut b,
        json!({"destination": "/not-proc/sys", "type": "tmpfs", "source": "tmpfs"}),
    );
    integration::berth_message(&out, "inside /proc", "runc words it its own way");
    b.assert_no_leftovers();
}

/// Replaces the image's directory `dir` with a symlink to `/elsewhere`
/// and checks that the spec's filesystem for it is refused, not mounted
/// where the link points.
#[track_caller]
fn assert_not_mounted_through_a_symlink(dir: &str) {
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    std::fs::remove_dir(rootfs.join(dir)).unwrap();
    std::fs::create_dir(rootfs.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", rootfs.join(dir)).unwrap();
    b.sh("echo started");
    let out = b.run();
    out.assert_failed();
    assert_eq!(out.stdout, "", "the container started: {out:?}");
    out.assert_mentions("must be mounted on ordinary directory");
    b.assert_no_leftovers();
}

#[test]
fn proc_is_not_mounted_through_a_symlink_in_the_image() {
    assert_not_mounted_through_a_symlink("proc");
}

#[test]
fn sysfs_is_not_mounted_through_a_symlink_in_the_image() {
    assert_not_mounted_through_a_symlink("sys");
}

#[test]
fn an_informational_proc_file_may_be_covered() {
    // What lxcfs does for /proc/cpuinfo and friends.
    let mut b = Bundle::new();
    let file = b.host_dir("lxcfs").join("cpuinfo");
    std::fs::write(&file, "processor : 0 (lxcfs)\n").unwrap();
    b.bind(&file, "/proc/cpuinfo", &["ro"])
        .sh("cat /proc/cpuinfo");
    assert_eq!(b.run().assert_ok().stdout, "processor : 0 (lxcfs)\n");
    b.assert_no_leftovers();
}

/// A container in the pid namespace of the process `init`, with
/// CAP_SYS_PTRACE as a privileged sidecar would have: it can see the
/// runtime's processes there and open their /proc entries.
fn sidecar(init: i64) -> Bundle {
    let mut b = Bundle::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        ns.push(json!({"type": "pid", "path": format!("/proc/{init}/ns/pid")}));
    });
    b.grant("CAP_SYS_PTRACE");
    b
}

#[test]
fn a_parked_init_holds_no_host_directory_open() {
    // What init holds while it waits for start is reachable through
    // /proc/1/fd; a directory there is a way out (CVE-2024-21626).
    let mut victim = Bundle::new();
    victim.set("/process/args", json!(["sleep", "600"]));
    victim.create().assert_ok();
    let init = victim.state_json()["pid"].as_i64().unwrap();
    let mut attacker = sidecar(init);
    let out = attacker.run_sh(
        "for f in /proc/1/fd/*; do [ -d \"$f\" ] && echo \"$f is a directory\"; done; echo checked",
    );
    victim.delete(&["--force"]).assert_ok();
    assert_eq!(out, "checked\n");
    victim.assert_no_leftovers();
}

/// Polls until `path` exists (the container side says it is ready).
#[track_caller]
fn wait_for_file(path: &std::path::Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed().as_secs() < 30,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_from_the_container() {
    // CVE-2019-5736: a process in the container's pid namespace (here with
    // CAP_SYS_PTRACE, as a privileged sidecar has) opens the parked init's
    // /proc/1/exe and, once init has exec'd the user's program, writes
    // through it. The victim runs a copy of the runtime, so a successful
    // attack harms nothing but the test.
    let mut victim = Bundle::new();
    let copy = victim
        .host_dir("runtime")
        .join(integration::runtime().file_name().unwrap());
    std::fs::copy(integration::runtime(), &copy).unwrap();
    let pristine = std::fs::read(&copy).unwrap();
    victim.set("/process/args", json!(["sleep", "600"]));
    let create = ["create", "--bundle", s(&victim.path), &victim.id];
    victim
        .output(victim.command_of(&copy).args(create))
        .assert_ok();
    let init = victim.state_json()["pid"].as_i64().unwrap();

    let mut attacker = sidecar(init);
    let shared = attacker.host_dir("shared");
    let go = shared.join("go");
    nix_mkfifo(&go);
    attacker.bind(&shared, "/shared", &[]);
    attacker.sh(
        "exec 3< /proc/1/exe || exit 3; echo > /shared/ready; read go < /shared/go; \
         if printf X >> /proc/self/fd/3; then echo wrote; else echo refused; fi > /shared/result",
    );
    let running = attacker.spawn_run();
    wait_for_file(&shared.join("ready"));
    victim.start().assert_ok();
    std::fs::write(&go, "go\n").unwrap();
    let code = running.exit_code();
    let result = std::fs::read_to_string(shared.join("result")).unwrap_or_default();
    victim.delete(&["--force"]).assert_ok();
    assert_eq!(code, 0, "the attacker could not run");
    assert_eq!(result, "refused\n");
    assert!(
        std::fs::read(&copy).unwrap() == pristine,
        "the runtime binary was changed"
    );
    victim.assert_no_leftovers();
    attacker.assert_no_leftovers();
}

fn nix_mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn only_stdio_reaches_the_process() {
    // Nothing berth held open during setup (state directory, sync socket,
    // exec fifo, namespace files) is left in the user's process.
    // The fds of a sleep the process starts: what it was given, and no
    // descriptor of the listing itself. The shell gives a background job
    // /dev/null as stdin after the fork (close, then open): listed at once,
    // fd 0 can be missing (seen once under runc), hence the pause.
    let listing = "sleep 5 & sleep 0.5; ls /proc/$!/fd; kill $!";
    let mut b = Bundle::new();
    assert_eq!(b.run_sh(listing), "0\n1\n2\n");
    b.set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let out = b.rt(&["exec", &b.id, "sh", "-c", listing]);
    b.delete(&["--force"]).assert_ok();
    assert_eq!(out.assert_ok().stdout, "0\n1\n2\n");
    b.assert_no_leftovers();
}

#[test]
fn a_mount_destination_through_a_symlink_to_root_stays_in_the_rootfs() {
    // CVE-2021-30465's family: the image's /escape -> / (or a climb of
    // ..) must mean the container's root, not the host's.
    for link in ["/", "../../../../../../.."] {
        let mut b = Bundle::new();
        std::os::unix::fs::symlink(link, b.rootfs().join("escape")).unwrap();
        let source = b.host_dir("source").join("file");
        std::fs::write(&source, "from the bundle\n").unwrap();
        let name = format!("berth-escape-{}", b.id);
        let on_host = std::path::Path::new("/tmp").join(&name);
        b.bind(&source, &format!("/escape/tmp/{name}"), &[])
            .sh(&format!("cat /tmp/{name}"));
        let out = b.run();
        assert!(
            !on_host.exists(),
            "{link}: the mount point was made on the host"
        );
        assert_eq!(out.assert_ok().stdout, "from the bundle\n", "{link}");
        b.assert_no_leftovers();
    }
}

/// Swaps `a` and `b` (a directory and a symlink) until `stop` is set, as
/// fast as the kernel allows: a process of another container that shares
/// the volume, racing the runtime between resolving a mount destination
/// and using it. (A shell loop in a container would hit the window too
/// rarely for a test.)
fn swapper(
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c = |p: &std::path::Path| std::ffi::CString::new(s(p)).unwrap();
        let (a, b) = (c(&a), c(&b));
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: two valid NUL-terminated paths; the call only renames.
            unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
        }
    })
}

#[test]
fn a_mount_destination_swapped_for_a_symlink_mid_create_stays_in_the_rootfs() {
    // CVE-2021-30465: /vol is a volume another container can write; it
    // turns /vol/d into a symlink to a host directory while the runtime
    // makes and mounts /vol/d/target. Each attempt may fail (the target
    // moved) or mount inside the rootfs; nothing may appear on the host.
    berth_only!("runc 1.1.5 makes the mount point by path and creates it on the host (CVE-2024-45310, fixed in runc 1.1.14)");
    let mut b = Bundle::new();
    let vol = b.host_dir("vol");
    let host = b.host_dir("host-target");
    std::fs::create_dir(vol.join("d")).unwrap();
    std::os::unix::fs::symlink(&host, vol.join("link")).unwrap();
    b.bind(&vol, "/vol", &[])
        .mount(json!({"destination": "/vol/d/target", "type": "tmpfs", "source": "tmpfs"}))
        // Wherever the symlink said at the moment: /vol/d, /vol/link (the
        // swapping goes on), or its target as a path in the rootfs.
        .sh("grep -Eq ' [^ ]*/target tmpfs ' /proc/mounts && echo mounted");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = swapper(vol.join("d"), vol.join("link"), stop.clone());
    let outcomes: Vec<Out> = (0..30).map(|_| b.run()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().unwrap();
    let on_host: Vec<_> = std::fs::read_dir(&host).unwrap().collect();
    assert!(on_host.is_empty(), "made on the host: {on_host:?}");
    for out in &outcomes {
        if out.code == 0 {
            assert_eq!(out.stdout, "mounted\n");
        } else {
            out.assert_mentions("/vol/d/target");
        }
    }
    b.assert_no_leftovers();
}

/// Whether the host runs the security module (then the label is applied,
/// else the container must be refused).
fn lsm_enabled(module: &str) -> bool {
    match module {
        "AppArmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y"),
        _ => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

#[test]
fn an_apparmor_profile_is_applied_or_the_container_refused() {
    // "unconfined" exists wherever AppArmor does.
    let mut b = Bundle::new();
    b.set("/process/apparmorProfile", json!("unconfined"))
        .sh("cat /proc/self/attr/current");
    assert_unconfined_or_refused(&b.run(), "process.apparmorProfile");
    b.assert_no_leftovers();
}

/// With AppArmor the process runs under the "unconfined" profile it asked
/// for; without it, it was refused naming `field`.
#[track_caller]
fn assert_unconfined_or_refused(out: &Out, field: &str) {
    if lsm_enabled("AppArmor") {
        assert!(out.assert_ok().stdout.contains("unconfined"), "{out:?}");
    } else {
        out.assert_failed();
        integration::berth_message(
            out,
            &format!("{field}: unconfined: AppArmor is not enabled on this host"),
            "runc 1.1.5 says only that writing /proc/self/attr/exec failed",
        );
    }
}

#[test]
fn selinux_labels_are_applied_or_the_container_refused() {
    let labels = [
        ("/process/selinuxLabel", "process.selinuxLabel"),
        ("/linux/mountLabel", "linux.mountLabel"),
    ];
    for (pointer, field) in labels {
        let mut b = Bundle::new();
        b.set(pointer, json!("system_u:object_r:container_file_t:s0"))
            .sh("true");
        let out = b.run();
        if lsm_enabled("SELinux") {
            out.assert_ok();
        } else {
            out.assert_failed();
            integration::berth_message(
                &out,
                &format!("{field}: system_u:object_r:container_file_t:s0: SELinux is not enabled"),
                "runc 1.1.5 words it its own way (or fails the tmpfs mount)",
            );
        }
        b.assert_no_leftovers();
    }
}

#[test]
fn exec_with_an_apparmor_profile_is_applied_or_refused() {
    let b = running_sleeper();
    let out = b.rt(&[
        "exec",
        "--apparmor",
        "unconfined",
        &b.id,
        "cat",
        "/proc/self/attr/current",
    ]);
    assert_unconfined_or_refused(&out, "exec.apparmorProfile");
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn a_container_root_cannot_undo_masked_and_read_only_paths() {
    // The default spec's root has no CAP_SYS_ADMIN: it may not unmount the
    // mask over /proc/keys, make /proc/sys writable or write through it.
    let mut b = Bundle::new();
    b.sh("wc -c < /proc/keys; \
          umount /proc/keys 2>/dev/null && echo unmasked; \
          mount -o remount,rw /proc/sys 2>/dev/null && echo remounted; \
          echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo wrote; \
          echo done");
    assert_eq!(b.run().assert_ok().stdout, "0\ndone\n");
    b.assert_no_leftovers();
}

/// In a nested user and pid namespace the kernel allows a new procfs
/// where a full one is in the mount namespace: with --no-pivot the
/// host's /proc stays there, under the rootfs moved onto it.
fn assert_no_pivot_leaves_no_host_proc(mut b: Bundle) {
    // Mapping root in the nested user namespace needs it.
    b.grant("CAP_SETFCAP");
    b.set("/root/readonly", json!(false)).sh(
        "unshare -mrpf sh -c 'echo nested; mount -t proc proc /tmp 2>/dev/null && echo mounted'",
    );
    let out = b.rt(&["run", "--no-pivot", "--bundle", s(&b.path), &b.id]);
    assert_eq!(out.stdout, "nested\n", "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn no_pivot_leaves_no_host_proc_to_mount_an_unmasked_one_from() {
    assert_no_pivot_leaves_no_host_proc(Bundle::new());
}

#[test]
fn no_pivot_in_a_user_namespace_leaves_no_host_proc_either() {
    // There the host's mounts are locked: they can only be covered.
    let mut b = Bundle::new();
    b.in_user_namespace();
    assert_no_pivot_leaves_no_host_proc(b);
}

#[test]
fn a_dev_null_swapped_for_a_link_cannot_unmask_a_procfs_file() {
    // CVE-2025-31133: masking binds /dev/null over /proc/keys; a /dev/null
    // that links to a writable procfs file (here the container's own
    // hostname, harmless; core_pattern in the published attack) would be
    // bound there read-write (here with no read-only /proc/sys, whose
    // read-only flag a bind of a file below it would keep).
    berth_only!("runc 1.1.5 binds the link's target (CVE-2025-31133, fixed in runc 1.2.8)");
    let mut b = Bundle::new();
    b.host_dir_at("/dev", "dev", |dev| {
        std::os::unix::fs::symlink("/proc/sys/kernel/hostname", dev.join("null")).unwrap();
    });
    b.set("/hostname", json!("box"))
        .set("/linux/maskedPaths", json!(["/proc/keys"]))
        .set("/linux/readonlyPaths", json!([]))
        .sh("echo pwned > /proc/keys; hostname");
    let out = b.run();
    assert!(
        !out.stdout.contains("pwned"),
        "the mask bound the link's target: {out:?}"
    );
    out.assert_failed().assert_mentions("/dev/null");
    b.assert_no_leftovers();
}

#[test]
fn a_proc_that_is_no_procfs_cannot_take_a_sysctl_write() {
    // CVE-2025-52881's class: berth writes sysctls after the container's
    // mounts are in place, so a mount there could take the write meant
    // for the kernel (a host file here). A config cannot make one: /proc
    // must be a procfs, and nothing may be mounted inside it (berth
    // refused both before this fix, as runc does). The vector left, a
    // mount the container makes before `exec` writes its LSM label, needs
    // AppArmor or SELinux, which neither this host nor the guest has; the
    // procfs checks themselves are unit-tested in runtime/src/procfs.rs.
    let mut b = Bundle::new();
    let fake = b.host_dir_at("/proc", "proc", |fake| {
        std::fs::create_dir_all(fake.join("sys/kernel")).unwrap();
        std::fs::write(fake.join("sys/kernel/domainname"), "orig\n").unwrap();
    });
    let host = fake.join("sys/kernel/domainname");
    b.set("/linux/sysctl", json!({"kernel.domainname": "pwned"}))
        .set("/linux/maskedPaths", json!([]))
        .set("/linux/readonlyPaths", json!([]));
    let out = b.run();
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        "orig\n",
        "the sysctl went to the mount: {out:?}"
    );
    out.assert_failed();
    b.assert_no_leftovers();
}

#[test]
fn a_dev_symlink_in_the_image_cannot_reach_a_host_directory() {
    // CVE-2026-41579: with the image's /dev a link to a host directory,
    // the runtime's /dev/ptmx and /dev/fd links went there by path: a
    // host file named ptmx deleted, links made among the host's files.
    berth_only!(
        "runc 1.1.5 deletes the host's ptmx through the link (CVE-2026-41579, fixed in runc 1.3.6)"
    );
    let mut b = Bundle::new();
    let host = b.host_dir("victim");
    std::fs::write(host.join("ptmx"), "host file\n").unwrap();
    let dev = b.rootfs().join("dev");
    std::fs::remove_dir_all(&dev).unwrap();
    std::os::unix::fs::symlink(&host, &dev).unwrap();
    b.sh("ls /dev/ptmx /dev/fd/ && echo started");
    let out = b.run();
    let mut left: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["ptmx"],
        "the runtime wrote through the link: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("ptmx")).unwrap(),
        "host file\n"
    );
    out.assert_ok();
    assert!(out.stdout.contains("started"), "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn a_pty_name_that_leads_elsewhere_does_not_become_the_console() {
    // CVE-2025-52565: the runtime opened its new pty's slave by name,
    // /dev/pts/N, and bound that path at /dev/console. A container whose
    // /dev/ptmx reaches a second devpts, and whose /dev/pts/N is a link,
    // had a file of its choosing bound there and written as the terminal
    // (a procfs file, before masking, in the published attack; a file of
    // the image here).
    berth_only!("runc 1.1.5 opens the pty slave by name (CVE-2025-52565, fixed in runc 1.2.8)");
    let mut b = Bundle::new();
    b.write_in_rootfs("/victim", "victim\n", 0o644);
    b.host_dir_at("/dev/pts", "fakepts", |pts| {
        std::os::unix::fs::symlink("/dev/pts2/ptmx", pts.join("ptmx")).unwrap();
        std::os::unix::fs::symlink("/victim", pts.join("0")).unwrap();
    });
    b.mount(
        json!({"destination": "/dev/pts2", "type": "devpts", "source": "devpts",
                   "options": ["newinstance", "ptmxmode=0666", "mode=0620"]}),
    )
    .sh("stat -c '%F %t' /dev/console");
    let terminal = b.run_with_console();
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("victim")).unwrap(),
        "victim\n",
        "the terminal was the image's file: {terminal:?}"
    );
    // 0x88 = 136, the first Unix 98 pty slave major.
    assert_eq!(terminal.trim(), "character special file 88");
    b.assert_no_leftovers();
}
