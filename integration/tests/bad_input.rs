//! Bad input: each is refused with a non-zero exit and a message naming the
//! problem, and leaves nothing behind.

use integration::{berth_message, berth_only, json, s, Bundle};

/// Asserts that `create` of `b` fails, mentioning `needle`, leaving nothing.
#[track_caller]
fn assert_create_refused(b: &Bundle, needle: &str) {
    b.create().assert_failed().assert_mentions(needle);
    b.assert_no_leftovers();
}

#[test]
fn malformed_json() {
    let b = Bundle::new();
    std::fs::write(b.path.join("config.json"), "{ \"ociVersion\": ").unwrap();
    let out = b.create();
    out.assert_failed();
    berth_message(
        &out,
        "config.json",
        "runc only prints the JSON decoder's error",
    );
    b.assert_no_leftovers();
}

#[test]
fn missing_oci_version() {
    berth_only!("runc 1.1.5 accepts a config without ociVersion");
    let mut b = Bundle::new();
    b.edit(|c| {
        c.as_object_mut()
            .unwrap()
            .remove("ociVersion")
            .map(drop)
            .unwrap_or_default()
    });
    assert_create_refused(&b, "ociVersion");
}

#[test]
fn unknown_namespace_type() {
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}))
    });
    assert_create_refused(&b, "bogus");
}

#[test]
fn relative_mount_destination() {
    berth_only!("runc 1.1.5 only warns about a relative mount destination");
    let mut b = Bundle::new();
    b.mount(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
    assert_create_refused(&b, "relative/dir");
}

/// `create` with `id` instead of the bundle's own id.
fn assert_id_refused(id: &str, needle: &str) {
    let b = Bundle::new();
    b.rt(&["create", "--bundle", s(&b.path), id])
        .assert_failed()
        .assert_mentions(needle);
    b.assert_no_leftovers();
}

#[test]
fn empty_id() {
    assert_id_refused("", "container id");
}

#[test]
fn dot_dot_id() {
    assert_id_refused("..", "container id");
}

#[test]
fn id_with_a_slash() {
    assert_id_refused("a/b", "container id");
}

#[test]
fn id_of_1024_characters() {
    assert_id_refused(&"a".repeat(1024), "long");
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new();
    b.set("/root/path", json!("no-such-rootfs"));
    assert_create_refused(&b, "no-such-rootfs");
}

#[test]
fn missing_binary_in_the_rootfs() {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["/no/such-binary"]));
    assert_create_refused(&b, "/no/such-binary");
}

#[test]
fn binary_not_on_path() {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["no-such-command"]));
    assert_create_refused(&b, "no-such-command");
}

#[test]
fn missing_bind_source() {
    let mut b = Bundle::new();
    let source = b.dir.join("no-such-source");
    b.bind(&source, "/mnt/x", &[]);
    assert_create_refused(&b, s(&source));
}

#[test]
fn duplicate_id() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.create().assert_failed().assert_mentions("already exists");
    assert_eq!(
        b.state_json()["status"],
        "created",
        "the first container is untouched"
    );
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn start_of_a_running_container() {
    let mut b = Bundle::new();
    b.sh("sleep 1000").create().assert_ok();
    b.start().assert_ok();
    b.start().assert_failed().assert_mentions("running");
    assert_eq!(b.state_json()["status"], "running");
}

#[test]
fn delete_of_a_running_container_without_force() {
    let mut b = Bundle::new();
    b.sh("sleep 1000").create().assert_ok();
    b.start().assert_ok();
    b.delete(&[]).assert_failed().assert_mentions("running");
    assert_eq!(
        b.state_json()["status"],
        "running",
        "the container is untouched"
    );
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn terminal_without_console_socket() {
    let mut b = Bundle::new();
    b.set("/process/terminal", json!(true));
    assert_create_refused(&b, "console");
}

#[test]
fn an_env_entry_without_a_name() {
    let mut b = Bundle::new();
    b.set("/process/env", json!(["=x", "PATH=/bin"]));
    assert_create_refused(&b, "=x");
}

#[test]
fn a_pidfd_socket_nobody_listens_on() {
    berth_only!("--pidfd-socket came with runc 1.2");
    let b = Bundle::new();
    let sock = b.dir.join("nobody.sock");
    b.rt(&[
        "create",
        "--pidfd-socket",
        s(&sock),
        "--bundle",
        s(&b.path),
        &b.id,
    ])
    .assert_failed()
    .assert_mentions("nobody.sock");
    b.assert_no_leftovers();
}

#[test]
fn an_intel_rdt_schema_is_refused_by_name() {
    // berth has no Intel RDT; runc refuses a schema where resctrl is absent.
    let mut b = Bundle::new();
    b.set("/linux/intelRdt", json!({"memBwSchema": "MB:0=70"}));
    assert_create_refused(&b, "intelRdt.memBwSchema");
}

#[test]
fn intel_rdt_monitoring_as_older_specs_ask_for_it_is_refused_by_name() {
    berth_only!("runc 1.1.5 and 1.3.6 ignore enableCMT and enableMBM where resctrl is absent");
    let mut b = Bundle::new();
    b.set("/linux/intelRdt", json!({"enableCMT": true}));
    assert_create_refused(&b, "intelRdt.enableCMT");
}

#[test]
fn idmap_on_a_mount_that_is_no_bind() {
    berth_only!("runc 1.1.5 passes idmap to tmpfs as data");
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}));
    assert_create_refused(&b, "(/t): idmapped mounts are bind mounts only");
}

#[test]
fn idmap_of_a_filesystem_that_cannot_be_idmapped() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let mut b = Bundle::new();
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    b.mount(
        json!({"destination": "/p", "type": "bind", "source": "/proc/sys",
                   "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map}),
    );
    assert_create_refused(&b, "mount /proc/sys to /p (idmap)");
}
