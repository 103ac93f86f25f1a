//! /dev: the default devices and links, and `linux.devices`.

use integration::{berth_only, json, Bundle, Value};

#[test]
fn default_devices_have_their_numbers() {
    let mut b = Bundle::new();
    let devices = "/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty";
    let out = b.run_sh(&format!("stat -c '%n %F %t:%T' {devices}"));
    let expected = [
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "/dev/full character special file 1:7",
        "/dev/random character special file 1:8",
        "/dev/urandom character special file 1:9",
        "/dev/tty character special file 5:0",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn default_devices_work() {
    let mut b = Bundle::new();
    let out = b.run_sh(
        "echo gone > /dev/null; head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c",
    );
    assert_eq!(out, "4\n4\n");
}

#[test]
fn dev_fd_and_stdio_links_point_into_proc() {
    let mut b = Bundle::new();
    let out = b.run_sh("for l in fd stdin stdout stderr; do readlink /dev/$l; done");
    assert_eq!(
        out,
        "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n"
    );
}

#[test]
fn dev_ptmx_is_the_container_devpts_ptmx() {
    let mut b = Bundle::new();
    assert_eq!(
        b.run_sh("stat -L -c '%F %t:%T' /dev/ptmx"),
        "character special file 5:2\n"
    );
}

#[test]
fn linux_devices_get_type_numbers_mode_and_owner() {
    let mut b = Bundle::new();
    let devices = json!([
        {"path": "/dev/custom-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 5},
        {"path": "/dev/custom-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/sub/custom-fifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 0},
    ]);
    b.set("/linux/devices", devices);
    let out = b.run_sh(
        "stat -c '%n %F %t:%T %a %u:%g' /dev/custom-null /dev/custom-loop /dev/sub/custom-fifo",
    );
    let expected = [
        "/dev/custom-null character special file 1:3 640 1000:5",
        "/dev/custom-loop block special file 7:0 600 0:0",
        "/dev/sub/custom-fifo fifo 0:0 620 0:0",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

/// Lists /data/conflict as c 1:3 over what `make` leaves in the image.
fn device_over(b: &mut Bundle, make: &str) -> integration::Out {
    let data = b.rootfs().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let made = std::process::Command::new("sh")
        .args(["-c", make])
        .current_dir(&data)
        .status()
        .unwrap();
    assert!(made.success(), "{make}");
    b.set(
        "/linux/devices",
        json!([{"path": "/data/conflict", "type": "c", "major": 1, "minor": 3}]),
    )
    .sh("stat -c '%F %t:%T' /data/conflict");
    b.run()
}

#[test]
fn a_matching_device_node_in_the_image_is_kept() {
    let mut b = Bundle::new();
    let out = device_over(&mut b, "mknod conflict c 1 3");
    assert_eq!(out.assert_ok().stdout, "character special file 1:3\n");
}

#[test]
fn a_file_where_a_device_goes_is_refused_and_kept() {
    berth_only!("runc 1.1.5 replaces it; runc 1.4 and later refuse");
    let mut b = Bundle::new();
    device_over(&mut b, "echo image > conflict")
        .assert_failed()
        .assert_mentions("/data/conflict has incorrect ftype");
    let kept = std::fs::read_to_string(b.rootfs().join("data/conflict")).unwrap();
    assert_eq!(kept, "image\n", "the image's file");
    b.assert_no_leftovers();
}

#[test]
fn another_device_where_a_device_goes_is_refused() {
    berth_only!("runc 1.1.5 replaces it; runc 1.4 and later refuse");
    let mut b = Bundle::new();
    device_over(&mut b, "mknod conflict c 1 5")
        .assert_failed()
        .assert_mentions(
            "/data/conflict has incorrect major:minor: 1:5 doesn't match expected 1:3",
        );
    b.assert_no_leftovers();
}

/// /dev/loop-control (c 10:237): in no default allow rule, and opening
/// it needs no capability, so only the device cgroup can refuse it.
fn loop_control() -> Value {
    json!({"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o600})
}

#[test]
fn a_listed_device_is_refused_under_a_deny_all_rule() {
    // linux.devices makes the node; only linux.resources.devices decides
    // whether it may be opened.
    let mut b = Bundle::new();
    b.set("/linux/devices", json!([loop_control()]));
    b.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"}]),
    );
    let out = b.sh("head -c0 /dev/loop-control && echo opened").run();
    b.assert_no_leftovers();
    out.assert_failed();
    assert!(!out.stdout.contains("opened"), "{out:?}");
    assert!(out.stderr.contains("not permitted"), "{out:?}");
}

#[test]
fn a_rule_access_with_a_stray_letter_is_normalised() {
    // "rwa": runc keeps the r, w and m it knows, in that order.
    let mut b = Bundle::new();
    b.set("/linux/devices", json!([loop_control()]));
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "rwa"}
    ]);
    b.set("/linux/resources/devices", rules);
    let out = b.run_sh("head -c0 /dev/loop-control && echo opened");
    b.assert_no_leftovers();
    assert_eq!(out, "opened\n");
}

#[test]
fn a_rule_access_in_another_order_with_repeats_works() {
    let mut b = Bundle::new();
    b.set("/linux/devices", json!([loop_control()]));
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "wrrw"}
    ]);
    b.set("/linux/resources/devices", rules);
    let out = b.run_sh("head -c0 /dev/loop-control && echo opened");
    b.assert_no_leftovers();
    assert_eq!(out, "opened\n");
}
