//! `linux.netDevices` (runtime-spec 1.3): host network devices moved into
//! the container's network namespace before its process starts, renamed
//! if asked, keeping their MTU, MAC and the addresses a user gave them.
//!
//! The namespace's owner decides what happens next, as with runc: a
//! device stays in a namespace that outlives the container, and when the
//! namespace goes the kernel returns a physical device to the host and
//! deletes a virtual one. Only a create that fails puts devices back.

use crate::netlink::{Address, Socket};
use oci_spec::runtime::{Linux, LinuxNamespaceType, LinuxNetDevice};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("linux.netDevices.{device}: {what}: {cause}")]
pub struct NetDevError {
    device: String,
    what: String,
    cause: std::io::Error,
}

/// What is wrong with the spec's netDevices, as (field, why).
pub fn check(linux: &Linux) -> Result<(), (String, String)> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let netns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network);
    let Some(netns) = netns else {
        // runc's words, which callers match.
        let why = "unable to move network devices without a NET namespace";
        return Err(("linux.netDevices".into(), why.into()));
    };
    if let Some(path) = netns.path() {
        if same_file(path, Path::new("/proc/self/ns/net")) {
            let why = format!(
                "{} is berth's own network namespace: its devices are the host's",
                path.display()
            );
            return Err(("linux.netDevices".into(), why));
        }
    }
    let mut names = HashSet::new();
    for (host, dev) in sorted(devices) {
        let field = format!("linux.netDevices.{host}");
        valid_name(host).map_err(|why| (field.clone(), why))?;
        let name = target(host, dev);
        if dev.name().as_deref().is_some_and(|n| !n.is_empty()) {
            valid_name(name).map_err(|why| (format!("{field}.name"), why))?;
        }
        if !names.insert(name) {
            let why = format!("a second device would be named {name:?} in the container");
            return Err((format!("{field}.name"), why));
        }
        if nix::net::if_::if_nametoindex(host.as_str()).is_err() {
            return Err((field, "no network device of that name on the host".into()));
        }
    }
    Ok(())
}

/// The kernel's rule for a device name (dev_valid_name).
fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(format!(
            "invalid network device name {name:?}: 1 to {} bytes",
            libc::IFNAMSIZ - 1
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!(
            "invalid network device name {name:?}: no '/', ':' or spaces, not . or .."
        ));
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The devices in name order, so that moves and errors are the same
/// from run to run.
fn sorted(devices: &HashMap<String, LinuxNetDevice>) -> BTreeMap<&String, &LinuxNetDevice> {
    devices.iter().collect()
}

fn target<'a>(host: &'a str, dev: &'a LinuxNetDevice) -> &'a str {
    dev.name()
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(host)
}

fn failed(device: &str, what: String) -> impl FnOnce(std::io::Error) -> NetDevError + use<> {
    let device = device.to_string();
    move |cause| NetDevError {
        device,
        what,
        cause,
    }
}

/// A device moved in, and what it had on the host (every address, to
/// restore them all if the create fails).
struct Moved {
    host: String,
    name: String,
    addresses: Vec<Address>,
    up: bool,
}

/// Moves devices between berth's network namespace and a container's,
/// remembering each move so a failed create can undo them.
pub struct Mover {
    host_ns: File,
    container_ns: File,
    host: Socket,
    inside: Socket,
    moved: Vec<Moved>,
}

impl Mover {
    /// Moves every device of `devices` into the network namespace of
    /// process `pid`; on failure the ones moved are put back.
    pub fn move_all(
        devices: &HashMap<String, LinuxNetDevice>,
        pid: i32,
    ) -> Result<Mover, NetDevError> {
        let first = devices.keys().min().map_or("", String::as_str);
        let fail = |what: &str| failed(first, what.to_string());
        let host_ns =
            File::open("/proc/self/ns/net").map_err(fail("open berth's network namespace"))?;
        let container_ns = File::open(format!("/proc/{pid}/ns/net"))
            .map_err(fail("open the container's network namespace"))?;
        let mut mover = Mover {
            host: Socket::open().map_err(fail("open a netlink socket"))?,
            inside: Socket::open_in(container_ns.as_fd()).map_err(fail(
                "open a netlink socket in the container's network namespace",
            ))?,
            host_ns,
            container_ns,
            moved: Vec::new(),
        };
        for (host, dev) in sorted(devices) {
            if let Err(e) = mover.move_in(host, target(host, dev)) {
                mover.undo();
                return Err(e);
            }
        }
        Ok(mover)
    }

    fn move_in(&mut self, host: &str, name: &str) -> Result<(), NetDevError> {
        let fail = |what: String| failed(host, what);
        let link = self
            .host
            .link(host)
            .map_err(fail("find it on the host".into()))?;
        if self.inside.link(name).is_ok() {
            let taken = std::io::Error::from_raw_os_error(libc::EEXIST);
            let what = format!("the container already has a device named {name:?}");
            return Err(fail(what)(taken));
        }
        let addresses = self.host.addresses(link.index);
        let addresses = addresses.map_err(fail("list its addresses".into()))?;
        let moved = self
            .host
            .move_link(link.index, self.container_ns.as_fd(), name);
        // The kernel moves before it renames: a failed rename can leave
        // the device inside under its host name.
        let inside_as = match moved {
            Ok(()) => Some(name),
            Err(_) => self.inside.link(host).is_ok().then_some(host),
        };
        if let Some(inside_as) = inside_as {
            self.remember(host, inside_as, addresses.clone(), link.up);
        }
        moved.map_err(fail(format!("move it into the container as {name:?}")))?;
        let index = self.inside.link(name);
        let index = index
            .map_err(fail(format!("find {name:?} in the container")))?
            .index;
        for a in addresses.iter().filter(|a| a.portable()) {
            let added = self.inside.add_address(index, a);
            added.map_err(fail(format!("restore its address {a} in the container")))?;
        }
        let up = self.inside.set_up(index);
        up.map_err(fail(format!("set {name:?} up in the container")))
    }

    fn remember(&mut self, host: &str, name: &str, addresses: Vec<Address>, up: bool) {
        self.moved.push(Moved {
            host: host.to_string(),
            name: name.to_string(),
            addresses,
            up,
        });
    }

    /// Puts every moved device back on the host, under its host name,
    /// with its addresses and state; best effort, as the create has
    /// failed already.
    pub fn undo(&mut self) {
        for m in self.moved.drain(..).rev() {
            let Ok(inside) = self.inside.link(&m.name) else {
                continue;
            };
            if self
                .inside
                .move_link(inside.index, self.host_ns.as_fd(), &m.host)
                .is_err()
            {
                continue;
            }
            let Ok(back) = self.host.link(&m.host) else {
                continue;
            };
            for a in &m.addresses {
                let _ = self.host.add_address(back.index, a);
            }
            if m.up {
                let _ = self.host.set_up(back.index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn devices_need_a_network_namespace_and_valid_names() {
        let no_ns = linux(serde_json::json!({"netDevices": {"lo": {}}}));
        assert_eq!(
            check(&no_ns).unwrap_err().1,
            "unable to move network devices without a NET namespace"
        );
        let own = linux(serde_json::json!({
            "namespaces": [{"type": "network", "path": "/proc/self/ns/net"}],
            "netDevices": {"lo": {}},
        }));
        assert!(check(&own).unwrap_err().1.contains("berth's own"));
        let with = |devices| {
            linux(serde_json::json!({"namespaces": [{"type": "network"}], "netDevices": devices}))
        };
        let (field, why) = check(&with(serde_json::json!({"lo": {"name": "a/b"}}))).unwrap_err();
        assert_eq!(field, "linux.netDevices.lo.name");
        assert!(why.contains("\"a/b\""), "{why}");
        let long = check(&with(serde_json::json!({"a234567890123456": {}}))).unwrap_err();
        assert_eq!(long.0, "linux.netDevices.a234567890123456");
        let twice = with(serde_json::json!({"lo": {"name": "x"}, "lo2": {"name": "x"}}));
        assert_eq!(check(&twice).unwrap_err().0, "linux.netDevices.lo2.name");
        let missing = check(&with(serde_json::json!({"berth-none0": {}}))).unwrap_err();
        assert_eq!(missing.0, "linux.netDevices.berth-none0");
        assert!(check(&with(serde_json::json!({"lo": {"name": "ctr0"}}))).is_ok());
    }
}
