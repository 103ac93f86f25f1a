//! `berth features`: the runtime spec's features document, saying only
//! what this build really does.

use serde_json::json;

pub fn run() -> anyhow::Result<i32> {
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": berth::rootfs::options::known(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
        },
        "annotations": {"io.github.berth.version": env!("CARGO_PKG_VERSION")},
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
