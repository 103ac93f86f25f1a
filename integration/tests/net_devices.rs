//! `linux.netDevices` (runtime-spec 1.3): host network devices moved into
//! the container's network namespace, seen with busybox `ip` inside and
//! `ip` on the host. This kernel has no dummy driver, so the devices are
//! one end of a veth pair the test makes (the pair goes when either end
//! is deleted, or with the namespace one end is in). runc 1.1.5 does not
//! know the field; runc 1.4 and later move devices the same way.

use integration::{berth_only, json, Bundle, Out};
use std::process::Command;

const WHY: &str = "runc 1.1.5 does not know linux.netDevices";

/// Runs the host's `ip` with `args`; its stdout, or None if it failed.
fn ip(args: &[&str]) -> Option<String> {
    let out = Command::new("ip").args(args).output().expect("run ip");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip_ok(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|| panic!("ip {args:?} failed"))
}

/// One end of a veth pair, `b<tag><pid>`, with an MTU, a MAC and a global
/// and a host-scoped address; deleted (with its peer) when dropped.
struct Veth {
    name: String,
}

const MTU: &str = "1789";
const MAC: &str = "00:11:22:33:44:55";
const GLOBAL: &str = "169.254.169.77/32";
const GLOBAL6: &str = "2001:db8::77/64";
const HOST_SCOPED: &str = "127.0.0.33/8";

impl Veth {
    fn new(tag: &str) -> Veth {
        let name = format!("b{tag}{}", std::process::id() % 100_000);
        let _ = ip(&["link", "del", &name]);
        let peer = format!("{name}p");
        ip_ok(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        let veth = Veth { name };
        let n = veth.name.as_str();
        ip_ok(&["link", "set", n, "mtu", MTU, "address", MAC]);
        for a in [GLOBAL, GLOBAL6, HOST_SCOPED] {
            ip_ok(&["address", "add", a, "dev", n]);
        }
        ip_ok(&["link", "set", n, "up"]);
        veth
    }

    /// What `ip address show` says of it on the host, if it is there.
    fn on_host(&self) -> Option<String> {
        ip(&["address", "show", "dev", &self.name])
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

/// A named network namespace for the container to join, deleted when
/// dropped (with whatever devices are left in it).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("berth-nd-{tag}-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip_ok(&["netns", "add", &name]);
        Netns { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Points the config's network namespace at `path`.
fn join_netns(b: &mut Bundle, path: &str) {
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(path);
            }
        }
    });
}

/// Asserts that `ip address show` output has the device's MTU, MAC and
/// global addresses, and not the host-scoped one.
#[track_caller]
fn assert_kept_its_attributes(shown: &str) {
    for want in [
        format!("mtu {MTU}"),
        MAC.to_string(),
        GLOBAL.into(),
        GLOBAL6.into(),
    ] {
        assert!(shown.contains(&want), "{want} is missing: {shown}");
    }
    assert!(
        !shown.contains(HOST_SCOPED),
        "a host-scoped address moved: {shown}"
    );
}

#[test]
fn features_lists_net_devices() {
    berth_only!(WHY);
    let out = Bundle::new().rt(&["features"]);
    let doc: integration::Value = serde_json::from_str(&out.assert_ok().stdout).unwrap();
    assert_eq!(doc["linux"]["netDevices"]["enabled"], true, "{doc}");
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let mut b = Bundle::new();
    let out = b.run_sh("ip address show lo");
    assert!(out.contains(",UP"), "lo is down: {out}");
    assert!(out.contains("127.0.0.1/8"), "{out}");
}

#[test]
fn a_device_moves_in_renamed_with_its_mtu_mac_and_global_addresses() {
    berth_only!(WHY);
    let veth = Veth::new("mv");
    let mut b = Bundle::new();
    b.set("/linux/netDevices", json!({&veth.name: {"name": "ctr0"}}));
    let shown = b.run_sh("ip address show dev ctr0");
    assert_kept_its_attributes(&shown);
    assert!(shown.contains(",UP"), "ctr0 is down: {shown}");
    assert_eq!(veth.on_host(), None, "the device is still on the host");
    b.assert_no_leftovers();
}

#[test]
fn a_device_moves_into_a_user_namespaced_container() {
    berth_only!(WHY);
    let veth = Veth::new("us");
    let mut b = Bundle::new();
    b.in_user_namespace()
        .set("/linux/netDevices", json!({&veth.name: {}}));
    let shown = b.run_sh(&format!("ip address show dev {}", veth.name));
    assert_kept_its_attributes(&shown);
    b.assert_no_leftovers();
}

#[test]
fn a_device_stays_in_a_network_namespace_that_outlives_the_container() {
    berth_only!(WHY);
    let veth = Veth::new("st");
    let netns = Netns::new("st");
    let mut b = Bundle::new();
    join_netns(&mut b, &netns.path());
    b.set("/linux/netDevices", json!({&veth.name: {"name": "ctr1"}}));
    assert!(b.run_sh("ip link show ctr1").contains("ctr1"));
    b.assert_no_leftovers();
    let left = ip_ok(&["-n", &netns.name, "address", "show", "dev", "ctr1"]);
    assert_kept_its_attributes(&left);
    // Its owner can hand it back to the host.
    ip_ok(&[
        "-n",
        &netns.name,
        "link",
        "set",
        "ctr1",
        "netns",
        "1",
        "name",
        &veth.name,
    ]);
    assert!(veth.on_host().is_some());
}

/// Asserts a create that failed left the device on the host as it was.
#[track_caller]
fn assert_back_on_the_host(veth: &Veth, out: &Out) {
    let shown = veth
        .on_host()
        .unwrap_or_else(|| panic!("the device did not come back: {out:?}"));
    for want in [MTU, MAC, GLOBAL, GLOBAL6, HOST_SCOPED, ",UP"] {
        assert!(shown.contains(want), "{want} did not come back: {shown}");
    }
}

#[test]
fn a_failed_create_puts_the_devices_back_on_the_host() {
    berth_only!(WHY);
    let (one, two) = (Veth::new("f1"), Veth::new("f2"));
    let mut b = Bundle::new();
    let hook = b.hook("exit 3");
    b.set(
        "/linux/netDevices",
        json!({&one.name: {"name": "ctr0"}, &two.name: {}}),
    )
    .set("/hooks", json!({"prestart": [hook]}));
    let out = b.run();
    out.assert_failed().assert_mentions("prestart");
    assert_back_on_the_host(&one, &out);
    assert_back_on_the_host(&two, &out);
    b.assert_no_leftovers();
}

#[test]
fn a_name_the_container_has_already_is_refused_and_the_device_stays() {
    berth_only!(WHY);
    let veth = Veth::new("lo");
    let mut b = Bundle::new();
    b.set("/linux/netDevices", json!({&veth.name: {"name": "lo"}}));
    let out = b.run();
    out.assert_failed()
        .assert_mentions(&format!("linux.netDevices.{}", veth.name))
        .assert_mentions("already has a device named");
    assert_back_on_the_host(&veth, &out);
    b.assert_no_leftovers();
}

#[test]
fn bad_net_devices_are_refused_by_field_and_leave_nothing() {
    berth_only!(WHY);
    let veth = Veth::new("bd");
    // The test's own network namespace is berth's.
    let own = format!("/proc/{}/ns/net", std::process::id());
    let host_ns = {
        let mut b = Bundle::new();
        join_netns(&mut b, &own);
        b
    };
    let own_refused = format!("{own} is berth's own network namespace");
    let no_ns = {
        let mut b = Bundle::new();
        b.edit(|c| {
            let all = c["linux"]["namespaces"].as_array_mut().unwrap();
            all.retain(|ns| ns["type"] != "network");
        });
        b
    };
    for (mut b, devices, mentions) in [
        (
            no_ns,
            json!({&veth.name: {}}),
            "unable to move network devices without a NET namespace",
        ),
        (host_ns, json!({&veth.name: {}}), &own_refused),
        (
            Bundle::new(),
            json!({"berth-none0": {}}),
            "linux.netDevices.berth-none0: no network device",
        ),
        (
            Bundle::new(),
            json!({&veth.name: {"name": "a b"}}),
            ".name: invalid network device name",
        ),
        (
            Bundle::new(),
            json!({&veth.name: {"name": "x"}, "lo": {"name": "x"}}),
            "lo.name: a second device would be named",
        ),
    ] {
        b.set("/linux/netDevices", devices);
        let out = b.create();
        out.assert_failed().assert_mentions(mentions);
        b.assert_no_leftovers();
        assert_back_on_the_host(&veth, &out);
    }
}
