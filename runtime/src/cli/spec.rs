//! `berth spec`: write a starting config.json, as `runc spec` does.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::PathBuf;

const TEMPLATE: &str = include_str!("spec-template.json");

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

/// `rootless` is the global `--rootless`, which `spec --rootless` sets.
pub fn run(a: Args, rootless: bool) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec: Value = serde_json::from_str(TEMPLATE).expect("template is valid JSON");
    // As runc: on a cgroup v2 host a container gets its own cgroup namespace.
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        add_cgroup_namespace(&mut spec);
    }
    if rootless {
        make_rootless(
            &mut spec,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

fn add_cgroup_namespace(spec: &mut Value) {
    let ns = spec["linux"]["namespaces"].as_array_mut();
    ns.expect("template has namespaces")
        .push(json!({"type": "cgroup"}));
}

/// runc's rootless changes: a user namespace mapping the caller to root,
/// no network namespace or cgroup resources, /sys bound from the host,
/// and no mount options naming host ids.
fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    linux.as_object_mut().map(|l| l.remove("resources"));
    let ns = linux["namespaces"]
        .as_array_mut()
        .expect("template has namespaces");
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "user"}));
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    for m in spec["mounts"].as_array_mut().expect("template has mounts") {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        } else if let Some(opts) = m["options"].as_array_mut() {
            opts.retain(|o| {
                !o.as_str()
                    .is_some_and(|o| o.starts_with("gid=") || o.starts_with("uid="))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_spec() {
        berth::spec::validate(&berth::spec::parse(TEMPLATE.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn rootless_maps_the_caller() {
        let mut spec: Value = serde_json::from_str(TEMPLATE).unwrap();
        make_rootless(&mut spec, 1000, 100);
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], 100);
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "user"));
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(spec["linux"].get("resources").is_none());
        let text = spec.to_string();
        assert!(!text.contains("gid=5"));
        berth::spec::validate(&berth::spec::parse(text.as_bytes()).unwrap()).unwrap();
    }
}
