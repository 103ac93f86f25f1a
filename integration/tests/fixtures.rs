//! Every config.json that Docker, containerd, podman and runc generated (in
//! `../shared/fixtures/configs/`, or `$BERTH_FIXTURES`) runs, adapted only
//! where this host or a later issue requires:
//! - `root.path` is the bundle's busybox rootfs;
//! - `linux.cgroupsPath` names a cgroup of the test's own, in the client's
//!   form (seccomp profiles are kept);
//! - each hook is replaced by one that logs its kind (Docker's prestart hook
//!   is dockerd's own binary);
//! - bind-mount sources and namespace paths that do not exist here are
//!   replaced by ones the test makes;
//! - rlimits and capabilities are clamped to what root may set on this host;
//! - args print what the test checks; a terminal goes to a console socket.

use integration::{fixtures_dir, json, s, systemd_cgroup, Bundle, NsFile, Value, HOOK_KINDS};
use std::path::Path;

fn run_fixture(name: &str) {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).expect("read fixture");
    let mut config: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let mut b = Bundle::new();
    let hook_kinds = replace_hooks(&b, &mut config);
    let _namespaces = replace_namespace_paths(&b, &mut config);
    let files = replace_bind_sources(&b, &mut config);
    let (script, expected) = checks(&config, &files);
    adapt_process(&b, &mut config, &script);
    own_cgroup(&mut config, &b.id);
    config["root"]["path"] = json!(b.rootfs());
    let terminal = config["process"]["terminal"] == true;
    b.edit(|c| *c = config);

    let output = if terminal {
        b.run_with_console()
    } else {
        b.run().assert_ok().stdout.clone()
    };
    assert_eq!(output, expected);
    let log = std::fs::read_to_string(b.dir.join("hooks.log")).unwrap_or_default();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        hook_kinds,
        "each hook ran once"
    );
    b.assert_no_leftovers();
}

/// The script the container runs and what it must print: its uid, its
/// hostname, and the contents of the files bind-mounted at `files`.
fn checks(config: &Value, files: &[String]) -> (String, String) {
    let mut script = "echo fixture-ok; id -u; hostname".to_owned();
    let uid = &config["process"]["user"]["uid"];
    let mut expected = format!("fixture-ok\n{uid}\n{}\n", hostname(config));
    for dest in files {
        script += &format!("; cat {dest}");
        expected += &content_for(dest);
    }
    (script, expected)
}

fn content_for(dest: &str) -> String {
    format!("content of {dest}\n")
}

/// Moves the cgroup to one of this test's own, in the form the client wrote
/// (`/docker/<id>`), or systemd's (`system.slice:docker:<id>`) when the
/// runtime runs with `--systemd-cgroup`.
fn own_cgroup(config: &mut Value, id: &str) {
    let linux = config["linux"].as_object_mut().unwrap();
    let Some(path) = linux.get("cgroupsPath").and_then(Value::as_str) else {
        return;
    };
    let parent = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("berth");
    let ours = match systemd_cgroup() {
        true => format!("system.slice:{parent}:{id}"),
        false => format!("/{parent}/{id}"),
    };
    linux.insert("cgroupsPath".into(), json!(ours));
}

/// Replaces every hook by one that logs its kind; returns the kinds in the
/// order they run.
fn replace_hooks(b: &Bundle, config: &mut Value) -> Vec<String> {
    let order = HOOK_KINDS;
    let Some(hooks) = config["hooks"].as_object_mut() else {
        return Vec::new();
    };
    let log = b.dir.join("hooks.log");
    for (kind, list) in hooks.iter_mut() {
        assert!(
            kind != "startContainer",
            "a startContainer hook runs inside the container: adapt the test"
        );
        *list = json!([b.hook(&format!("echo {kind} >> {}", s(&log)))]);
    }
    order
        .iter()
        .filter(|k| hooks.contains_key(**k))
        .map(|k| k.to_string())
        .collect()
}

/// Points each namespace `path` at a fresh namespace of the same type.
fn replace_namespace_paths(b: &Bundle, config: &mut Value) -> Vec<NsFile> {
    let mut made = Vec::new();
    for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns.get("path").is_some() {
            let kind = match ns["type"].as_str().unwrap() {
                "network" => "net",
                other => other,
            };
            let file = NsFile::new(b, kind);
            ns["path"] = json!(file.path);
            made.push(file);
        }
    }
    made
}

/// Replaces bind-mount sources that do not exist here by files (or, under
/// /dev, directories) the test makes; returns where the files are mounted.
fn replace_bind_sources(b: &Bundle, config: &mut Value) -> Vec<String> {
    let dir = b.host_dir("binds");
    let mut files = Vec::new();
    for (i, mount) in config["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let source = mount["source"].as_str().unwrap_or_default();
        if !source.starts_with('/') || Path::new(source).exists() {
            continue;
        }
        let dest = mount["destination"].as_str().unwrap().to_owned();
        let replacement = dir.join(i.to_string());
        if dest.starts_with("/dev/") {
            std::fs::create_dir(&replacement).unwrap();
        } else {
            std::fs::write(&replacement, content_for(&dest)).unwrap();
            files.push(dest);
        }
        mount["source"] = json!(replacement);
    }
    files
}

/// The hostname the container will report: its own, or the host's when it
/// has none.
fn hostname(config: &Value) -> String {
    config["hostname"].as_str().map_or_else(
        || {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim()
                .to_owned()
        },
        str::to_owned,
    )
}

/// Sets args, keeps the marker in env, and clamps rlimits and capabilities.
fn adapt_process(b: &Bundle, config: &mut Value, script: &str) {
    let process = &mut config["process"];
    process["args"] = json!(["sh", "-c", script]);
    process["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(b.marker()));
    for rlimit in process["rlimits"].as_array_mut().into_iter().flatten() {
        let hard = host_hard_limit(rlimit["type"].as_str().unwrap());
        for key in ["soft", "hard"] {
            rlimit[key] = json!(rlimit[key].as_u64().unwrap().min(hard));
        }
    }
    let bounding = host_bounding_set();
    for set in process["capabilities"]
        .as_object_mut()
        .into_iter()
        .flat_map(|c| c.values_mut())
    {
        set.as_array_mut()
            .unwrap()
            .retain(|cap| bounding.contains(&cap.as_str().unwrap().to_owned()));
    }
}

fn host_hard_limit(name: &str) -> u64 {
    let resource = match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        other => panic!("fixture has {other}: teach host_hard_limit about it"),
    };
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid rlimit to write into.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut limit) }, 0);
    limit.rlim_max
}

/// Names of the capabilities in this process's bounding set (CAP_SYS_RESOURCE
/// is missing on this VM).
fn host_bounding_set() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    let mask = u64::from_str_radix(hex, 16).unwrap();
    CAPS.iter()
        .enumerate()
        .filter(|(bit, _)| mask & 1 << bit != 0)
        .map(|(_, name)| format!("CAP_{name}"))
        .collect()
}

/// Capability names by bit number (linux/capability.h).
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

const FIXTURES: [&str; 9] = [
    "containerd-1.6-ctr-default.json",
    "docker-20.10-constrained.json",
    "docker-20.10-default.json",
    "docker-20.10-detached.json",
    "docker-20.10-privileged.json",
    "docker-20.10-tty.json",
    "podman-4.3-default.json",
    "runc-1.1-spec-rootless.json",
    "runc-1.1-spec.json",
];

#[test]
fn every_fixture_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir (set BERTH_FIXTURES)")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(found, FIXTURES);
}

#[test]
fn containerd_1_6_ctr_default() {
    run_fixture(FIXTURES[0]);
}

#[test]
fn docker_20_10_constrained() {
    run_fixture(FIXTURES[1]);
}

#[test]
fn docker_20_10_default() {
    run_fixture(FIXTURES[2]);
}

#[test]
fn docker_20_10_detached() {
    run_fixture(FIXTURES[3]);
}

#[test]
fn docker_20_10_privileged() {
    run_fixture(FIXTURES[4]);
}

#[test]
fn docker_20_10_tty() {
    run_fixture(FIXTURES[5]);
}

#[test]
fn podman_4_3_default() {
    run_fixture(FIXTURES[6]);
}

#[test]
fn runc_1_1_spec_rootless() {
    run_fixture(FIXTURES[7]);
}

#[test]
fn runc_1_1_spec() {
    run_fixture(FIXTURES[8]);
}
