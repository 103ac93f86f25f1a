//! Kubernetes through CRI: the suite starts a containerd with its CRI
//! plugin in a network namespace of its own (see `integration::cri`) and
//! makes the calls kubelet makes, with the runtime handler `berth`
//! (berth's shim driving berth), or `runc` when `BERTH_CRI_HANDLER=runc`,
//! to prove the scenarios honest.

use integration::{
    cri_or_skip, ns_inode, poll, Cri, Input, Out, CRI_IMAGE, PAUSE_IMAGE, POD_SUBNET,
};
use k8s_cri::v1 as cri;
use std::path::Path;

/// A process that runs until it is killed.
const SLEEP: [&str; 2] = ["sleep", "1000"];

#[test]
fn the_image_service_lists_the_imported_images() {
    let c = cri_or_skip!();
    let images = c
        .call(c.images().list_images(cri::ListImagesRequest::default()))
        .expect("ListImages");
    let tags: Vec<&String> = images.images.iter().flat_map(|i| &i.repo_tags).collect();
    for image in [CRI_IMAGE, PAUSE_IMAGE] {
        assert!(tags.iter().any(|t| *t == image), "{image} in {tags:?}");
    }
}

#[test]
fn a_pod_runs_on_the_handlers_shim_and_runtime() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let (status, _) = pod.status();
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(status.runtime_handler, c.handler.name);
    assert_same_file(
        &shim_exe(parent_of(pod.pid())),
        &c.keeper().host_path(&c.handler.shim),
    );
    assert_eq!(runtime_state(c, &pod.id), "running");
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

/// The executable of process `pid`.
fn shim_exe(pid: libc::pid_t) -> std::path::PathBuf {
    format!("/proc/{pid}/exe").into()
}

/// Asserts that two paths name one file (the host names a stack's files
/// through its jail's root).
#[track_caller]
fn assert_same_file(a: &Path, b: &Path) {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| {
        let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (m.dev(), m.ino())
    };
    assert_eq!(id(a), id(b), "{} is not {}", a.display(), b.display());
}

/// The parent of process `pid`.
fn parent_of(pid: libc::pid_t) -> libc::pid_t {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
    ppid.expect("a PPid line").trim().parse().expect("a pid")
}

/// The status the handler's runtime itself reports for container `id`.
fn runtime_state(c: &Cri, id: &str) -> String {
    let mut state = c.keeper().program(&c.handler.runtime);
    state.arg("--root").arg(&c.runtime_root).args(["state", id]);
    let out = integration::run_command(&mut state, &c.logs());
    let state: integration::Value = serde_json::from_str(&out.assert_ok().stdout).expect("JSON");
    state["status"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_containers_of_a_pod_share_its_shim() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let one = pod.start(pod.container_config("one", &SLEEP));
    let two = pod.start(pod.container_config("two", &SLEEP));
    let shim = parent_of(pod.pid());
    assert_eq!(parent_of(one.pid()), shim, "the first container's parent");
    assert_eq!(parent_of(two.pid()), shim, "the second container's parent");
    assert_same_file(&shim_exe(shim), &c.keeper().host_path(&c.handler.shim));
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

#[test]
fn exec_sync_returns_stdout_stderr_and_the_exit_code() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ctr = pod.run(&SLEEP);
    let out = ctr.exec(&["sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "to-out\n", "to-err\n")
    );
}

#[test]
fn streaming_exec_returns_stdout_stderr_and_the_exit_code() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ctr = pod.run(&SLEEP);
    let script = "echo to-out; echo to-err >&2; exit 3";
    let out = ctr
        .exec_streaming(&["sh", "-c", script], Input::default())
        .expect("an exec session");
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "to-out\n", "to-err\n")
    );
    let out = ctr.exec_streaming(&["true"], Input::default());
    assert_eq!(out.expect("an exec session").code, 0);
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

#[test]
fn streaming_exec_on_a_terminal_gets_its_size_and_stdin() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ctr = pod.run(&SLEEP);
    // containerd sets the size and passes stdin on separate paths: wait
    // (a bounded while) for the size.
    let script = "echo ready; read line; for i in $(seq 100); do \
        s=$(stty size 2>/dev/null) && [ \"$s\" != '0 0' ] && break; sleep 0.05; done; \
        echo \"$s\"; [ -t 0 ] && echo \"a terminal, $line\"; exit 4";
    let input = Input {
        terminal: Some((77, 20)),
        stdin: b"go\n".to_vec(),
        prompt: "ready".into(),
        until: None,
    };
    let out = ctr.exec_streaming(&["sh", "-c", script], input);
    let out = out.expect("an exec session");
    assert_eq!(out.code, 4, "{out:#?}");
    assert!(out.stdout.contains("20 77\r\n"), "{out:#?}");
    assert!(out.stdout.contains("a terminal, go\r\n"), "{out:#?}");
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

#[test]
fn attach_reaches_the_containers_stdin_and_stdout() {
    let c = cri_or_skip!();
    let pod = c.pod();
    // An attach sees only what comes after it: the container says it
    // waits until its stdin has a line, and the session sends the line
    // once it has seen that.
    let script =
        "while echo waiting; ! read -t 1 line; do :; done; echo \"got $line\"; exec sleep 1000";
    let mut config = pod.container_config("c", &["sh", "-c", script]);
    config.stdin = true;
    let ctr = pod.start(config);
    let input = Input {
        stdin: b"hello\n".to_vec(),
        prompt: "waiting".into(),
        until: Some("got hello\n".into()),
        ..Default::default()
    };
    let out = ctr.attach(input).expect("an attach session");
    assert!(out.stdout.ends_with("waiting\ngot hello\n"), "{out:#?}");
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

#[test]
fn container_logs_are_in_cri_format() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ctr = pod.run(&["sh", "-c", "echo one; echo two >&2; echo three"]);
    assert_eq!(ctr.wait_exited().exit_code, 0);
    let log = std::fs::read_to_string(ctr.log_path()).expect("read the container's log");
    let lines: Vec<(&str, &str)> = log.lines().map(cri_log_line).collect();
    let mut stdout: Vec<&str> = lines
        .iter()
        .filter(|l| l.0 == "stdout")
        .map(|l| l.1)
        .collect();
    stdout.sort();
    assert_eq!(stdout, ["F one", "F three"], "{log}");
    let stderr: Vec<&str> = lines
        .iter()
        .filter(|l| l.0 == "stderr")
        .map(|l| l.1)
        .collect();
    assert_eq!(stderr, ["F two"], "{log}");
}

/// `<RFC 3339 time> <stream> <tag> <text>` as (stream, "tag text"),
/// checking the time's shape.
fn cri_log_line(line: &str) -> (&str, &str) {
    let mut fields = line.splitn(3, ' ');
    let (time, stream, rest) = (fields.next(), fields.next(), fields.next());
    let time = time.unwrap_or_default();
    assert!(
        time.len() > 20 && time.as_bytes()[10] == b'T' && time.contains(['Z', '+', '-']),
        "a CRI log line begins with its time: {line:?}"
    );
    (stream.unwrap_or_default(), rest.unwrap_or_default())
}

#[test]
fn stats_report_the_cpu_and_memory_of_a_running_container() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ctr = pod.run(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 1000",
    ]);
    let cpu = |s: &cri::ContainerStats| {
        s.cpu
            .as_ref()?
            .usage_core_nano_seconds
            .as_ref()
            .map(|v| v.value)
    };
    let stats = poll(
        "the container's CPU time",
        || ctr.stats(),
        |s| cpu(s) > Some(0),
    );
    let memory = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref());
    assert!(memory.is_some_and(|m| m.value > 0), "{stats:#?}");
    let filter = cri::ContainerStatsFilter {
        pod_sandbox_id: pod.id.clone(),
        ..Default::default()
    };
    let request = cri::ListContainerStatsRequest {
        filter: Some(filter),
    };
    let listed = c
        .call(c.runtime().list_container_stats(request))
        .expect("ListContainerStats");
    let ids: Vec<&str> = listed
        .stats
        .iter()
        .filter_map(|s| Some(s.attributes.as_ref()?.id.as_str()))
        .collect();
    assert_eq!(ids, [ctr.id.as_str()]);
}

#[test]
fn a_pod_gets_an_address_on_the_bridge() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let ip = pod.status().0.network.expect("a network status").ip;
    assert!(in_pod_subnet(&ip), "{ip} in {POD_SUBNET}");
    let ctr = pod.run(&SLEEP);
    let out = ctr.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]);
    let prefix = POD_SUBNET.split('/').nth(1).unwrap();
    let want = format!("inet {ip}/{prefix} ");
    assert!(
        out.assert_ok().stdout.contains(&want),
        "{want:?} in {out:#?}"
    );
    let netns = pod.netns.clone().expect("the pod has a network namespace");
    assert!(netns.exists(), "{}", netns.display());
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

fn in_pod_subnet(ip: &str) -> bool {
    let (net, bits) = POD_SUBNET.split_once('/').unwrap();
    let parse = |a: &str| a.parse::<std::net::Ipv4Addr>().map(u32::from);
    let mask = u32::MAX << (32 - bits.parse::<u32>().unwrap());
    parse(ip).is_ok_and(|ip| ip & mask == parse(net).unwrap() & mask)
}

/// The host port the portmap scenario maps, in the suite's namespace.
const HOST_PORT: u16 = 18080;

#[test]
fn a_host_port_reaches_the_pod_from_loopback() {
    let c = cri_or_skip!();
    let mut config = c.pod_config();
    config.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp.into(),
        container_port: 80,
        host_port: HOST_PORT.into(),
        host_ip: String::new(),
    }];
    let pod = c.run_pod(config).expect("RunPodSandbox");
    let page = "mkdir /www && echo hello-from-the-pod >/www/index.html";
    pod.run(&[
        "sh",
        "-c",
        &format!("{page} && exec httpd -f -p 80 -h /www"),
    ]);
    let served = |r: &Result<String, String>| {
        r.as_ref().is_ok_and(|r| {
            r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\nhello-from-the-pod\n")
        })
    };
    let _response = poll(
        "the page through the host port",
        || c.http_get(HOST_PORT),
        served,
    );
}

/// What `cmd` prints in a running container of a pod of its own, whose
/// sandbox and container security contexts `pod` and `container` set.
fn exec_with(
    c: &Cri,
    pod: impl FnOnce(&mut cri::LinuxSandboxSecurityContext),
    container: impl FnOnce(&mut cri::LinuxContainerSecurityContext),
    cmd: &[&str],
) -> Out {
    let mut config = c.pod_config();
    pod(sandbox_context(&mut config));
    if uses_the_nodes_network(&config) {
        config.hostname.clear();
    }
    let pod = c.run_pod(config).expect("RunPodSandbox");
    let mut config = pod.container_config("c", &SLEEP);
    let linux = config.linux.as_mut().unwrap();
    container(linux.security_context.get_or_insert_with(Default::default));
    pod.start(config).exec(cmd)
}

/// Whether a pod of `config` has the node's network, so that kubelet
/// gives it no hostname (without a UTS namespace of its own the runtime
/// could set none).
fn uses_the_nodes_network(config: &cri::PodSandboxConfig) -> bool {
    let linux = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref());
    let namespaces = linux.and_then(|s| s.namespace_options.as_ref());
    namespaces.is_some_and(|n| n.network == cri::NamespaceMode::Node as i32)
}

fn sandbox_context(config: &mut cri::PodSandboxConfig) -> &mut cri::LinuxSandboxSecurityContext {
    let linux = config.linux.get_or_insert_with(Default::default);
    linux.security_context.get_or_insert_with(Default::default)
}

/// [`exec_with`] a container security context changed by `container`.
fn exec_as(
    c: &Cri,
    container: impl FnOnce(&mut cri::LinuxContainerSecurityContext),
    cmd: &[&str],
) -> Out {
    exec_with(c, |_| {}, container, cmd)
}

fn unchanged(_: &mut cri::LinuxContainerSecurityContext) {}

#[test]
fn run_as_user_sets_the_processes_uid() {
    let c = cri_or_skip!();
    let as_user = |s: &mut cri::LinuxContainerSecurityContext| {
        s.run_as_user = Some(cri::Int64Value { value: 1000 });
    };
    assert_eq!(
        exec_as(c, as_user, &["id", "-u"]).assert_ok().stdout,
        "1000\n"
    );
    assert_eq!(
        exec_as(c, unchanged, &["id", "-u"]).assert_ok().stdout,
        "0\n"
    );
}

#[test]
fn a_read_only_rootfs_refuses_writes() {
    let c = cri_or_skip!();
    let read_only = |s: &mut cri::LinuxContainerSecurityContext| s.readonly_rootfs = true;
    let out = exec_as(c, read_only, &["touch", "/probe"]);
    out.assert_mentions("read-only file system");
    exec_as(c, unchanged, &["touch", "/probe"]).assert_ok();
}

/// The effective capability set that `/proc/self/status` shows in a
/// container made by [`exec_with`].
fn cap_eff(out: &Out) -> u64 {
    let line = out
        .assert_ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"));
    u64::from_str_radix(line.expect("a CapEff line").trim(), 16).expect("hex")
}

const STATUS: [&str; 2] = ["cat", "/proc/self/status"];
const CAP_CHOWN: u32 = 0;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

#[test]
fn capabilities_are_added_and_dropped() {
    let c = cri_or_skip!();
    let changed = |s: &mut cri::LinuxContainerSecurityContext| {
        s.capabilities = Some(cri::Capability {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["CHOWN".into()],
            ..Default::default()
        });
    };
    let caps = cap_eff(&exec_as(c, changed, &STATUS));
    assert!(
        has(caps, CAP_NET_ADMIN) && !has(caps, CAP_CHOWN),
        "{caps:#x}"
    );
    let default = cap_eff(&exec_as(c, unchanged, &STATUS));
    assert!(
        !has(default, CAP_NET_ADMIN) && has(default, CAP_CHOWN),
        "{default:#x}"
    );
}

#[test]
fn a_privileged_container_has_the_admin_capabilities() {
    let c = cri_or_skip!();
    let caps = cap_eff(&exec_with(
        c,
        |pod| pod.privileged = true,
        |ctr| ctr.privileged = true,
        &STATUS,
    ));
    assert!(
        has(caps, CAP_SYS_ADMIN) && has(caps, CAP_NET_ADMIN),
        "{caps:#x}"
    );
    let default = cap_eff(&exec_as(c, unchanged, &STATUS));
    assert!(!has(default, CAP_SYS_ADMIN), "{default:#x}");
}

/// The `Seccomp:` mode in `/proc/self/status` (0 none, 2 filter).
fn seccomp_mode(out: &Out) -> String {
    let line = out
        .assert_ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"));
    line.expect("a Seccomp line").trim().to_owned()
}

fn profile(kind: cri::security_profile::ProfileType, localhost: &str) -> cri::SecurityProfile {
    cri::SecurityProfile {
        profile_type: kind.into(),
        localhost_ref: localhost.into(),
    }
}

#[test]
fn seccomp_runtime_default_filters_and_unset_does_not() {
    let c = cri_or_skip!();
    let runtime_default = |s: &mut cri::LinuxContainerSecurityContext| {
        s.seccomp = Some(profile(
            cri::security_profile::ProfileType::RuntimeDefault,
            "",
        ));
    };
    assert_eq!(seccomp_mode(&exec_as(c, runtime_default, &STATUS)), "2");
    assert_eq!(seccomp_mode(&exec_as(c, unchanged, &STATUS)), "0");
}

#[test]
fn a_localhost_seccomp_profile_is_enforced() {
    let c = cri_or_skip!();
    let path = c.dir.join("deny-mkdir.json");
    let deny_mkdir = integration::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    std::fs::write(&path, deny_mkdir.to_string()).expect("write the profile");
    let localhost = |s: &mut cri::LinuxContainerSecurityContext| {
        let path = path.display().to_string();
        s.seccomp = Some(profile(
            cri::security_profile::ProfileType::Localhost,
            &path,
        ));
    };
    let out = exec_as(c, localhost, &["mkdir", "/tmp/d"]);
    out.assert_mentions("operation not permitted");
    exec_as(c, unchanged, &["mkdir", "/tmp/d"]).assert_ok();
}

/// `readlink` of the container's own net, pid and ipc namespaces.
const NAMESPACES: [&str; 3] = [
    "sh",
    "-c",
    "for ns in net pid ipc; do readlink /proc/self/ns/$ns; done",
];

#[test]
fn a_host_namespaces_pod_shares_the_nodes_net_pid_and_ipc() {
    let c = cri_or_skip!();
    let node = |kind: &str, path: &Path| format!("{kind}:[{}]", ns_inode(path));
    let nodes = [
        node("net", &c.netns),
        node("pid", &c.keeper().ns("pid")),
        node("ipc", &c.keeper().ns("ipc")),
    ];
    let host = |s: &mut cri::LinuxSandboxSecurityContext| {
        s.namespace_options = Some(cri::NamespaceOption {
            network: cri::NamespaceMode::Node.into(),
            pid: cri::NamespaceMode::Node.into(),
            ipc: cri::NamespaceMode::Node.into(),
            ..Default::default()
        });
    };
    let out = exec_with(c, host, |_| {}, &NAMESPACES);
    let lines = |out: &Out| {
        out.assert_ok()
            .stdout
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&out), nodes);
    let own = lines(&exec_as(c, unchanged, &NAMESPACES));
    assert_eq!(own.len(), nodes.len(), "{own:?}");
    for (own, node) in own.iter().zip(&nodes) {
        assert_ne!(own, node, "a default pod has namespaces of its own");
    }
}

#[test]
fn an_oom_killed_container_says_oomkilled() {
    let c = cri_or_skip!();
    let pod = c.pod();
    let mut config =
        pod.container_config("c", &["sh", "-c", "x=0123456789; while :; do x=$x$x; done"]);
    let resources = config.linux.as_mut().unwrap().resources.as_mut().unwrap();
    resources.memory_limit_in_bytes = 32 << 20;
    let ctr = pod.start(config);
    let status = ctr.wait_exited();
    assert_eq!(
        (status.reason.as_str(), status.exit_code),
        ("OOMKilled", 137),
        "{status:#?}"
    );
}

// containerd 2.x only, which lists no features for a handler of berth's
// own type in 2.0 and 2.1 (docs/install.md): hack/test skips it there.
#[test]
fn the_status_lists_the_handler_and_its_recursive_read_only_mounts() {
    let c = cri_or_skip!();
    let status = c
        .call(c.runtime().status(cri::StatusRequest { verbose: false }))
        .expect("Status");
    let handler = status
        .runtime_handlers
        .iter()
        .find(|h| h.name == c.handler.name);
    let features = handler.and_then(|h| h.features.as_ref());
    assert!(
        features.is_some_and(|f| f.recursive_read_only_mounts),
        "handler {} with recursive read-only mounts in {:#?}",
        c.handler.name,
        status.runtime_handlers
    );
}

/// What writing below a tmpfs mounted inside a read-only volume does, with
/// the volume recursively read-only or not.
fn write_below_a_read_only_volume(c: &Cri, recursive: bool) -> Out {
    let volume = c.dir.join(format!("volume.{recursive}"));
    let sub = volume.join("sub");
    std::fs::create_dir_all(&sub).expect("create the volume");
    // The tmpfs goes in containerd's mount namespace, where it reads
    // host paths; it goes with that namespace.
    let mut mount = c.keeper().program(&"mount");
    mount.args(["-t", "tmpfs", "tmpfs"]).arg(&sub);
    integration::run_command(&mut mount, &c.logs()).assert_ok();
    let pod = c.pod();
    let mut config = pod.container_config("c", &SLEEP);
    config.mounts.push(cri::Mount {
        container_path: "/volume".into(),
        host_path: volume.to_str().expect("a UTF-8 path").into(),
        readonly: true,
        recursive_read_only: recursive,
        ..Default::default()
    });
    let out = pod.start(config).exec(&["touch", "/volume/sub/probe"]);
    pod.stop_and_remove();
    let mut umount = c.keeper().program(&"umount");
    umount.arg(&sub);
    integration::run_command(&mut umount, &c.logs()).assert_ok();
    out
}

// Needs the handler's features, as the scenario above (1.6 and 1.7 ignore
// the field, 2.1 crashes without the features): hack/test skips it there.
#[test]
fn a_recursive_read_only_volume_is_read_only_below_its_submounts() {
    let c = cri_or_skip!();
    write_below_a_read_only_volume(c, true).assert_mentions("read-only file system");
    write_below_a_read_only_volume(c, false).assert_ok();
}

/// The user namespace kubelet asks for a pod of `hostUsers: false`: its
/// root is host id 196608 (a multiple of 65536, as kubelet allots them).
fn pod_user_namespace() -> cri::NamespaceOption {
    let ids = vec![cri::IdMapping {
        host_id: 3 << 16,
        container_id: 0,
        length: 1 << 16,
    }];
    cri::NamespaceOption {
        userns_options: Some(cri::UserNamespace {
            mode: cri::NamespaceMode::Pod.into(),
            uids: ids.clone(),
            gids: ids,
        }),
        ..Default::default()
    }
}

// containerd 1.7 and 2.x (1.6's CRI ignores user namespaces): hack/test
// skips it on the host's 1.6.
#[test]
fn a_pod_without_host_users_runs_in_its_own_user_namespace_on_an_idmapped_image() {
    let c = cri_or_skip!();
    let out = exec_with(
        c,
        |s| s.namespace_options = Some(pod_user_namespace()),
        // kubelet gives each container the pod's namespace options too.
        |s| s.namespace_options = Some(pod_user_namespace()),
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /bin/busybox /etc",
        ],
    );
    let words = out.assert_ok().stdout_words();
    assert_eq!(
        words,
        ["0 196608 65536", "0 196608 65536", "0:0", "0:0"],
        "{out:?}"
    );
}
