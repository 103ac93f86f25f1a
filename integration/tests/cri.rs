//! Kubernetes through CRI: the suite starts a containerd with its CRI
//! plugin in a network namespace of its own (see `integration::cri`) and
//! makes the calls kubelet makes, with the runtime handler `berth`
//! (berth's shim driving berth), or `runc` when `BERTH_CRI_HANDLER=runc`,
//! to prove the scenarios honest.

use integration::{cri_or_skip, poll, Cri, CRI_IMAGE, PAUSE_IMAGE};
use k8s_cri::v1 as cri;

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
    assert_eq!(shim_exe(parent_of(pod.pid())), c.handler.shim);
    assert_eq!(runtime_state(c, &pod.id), "running");
    pod.stop_and_remove();
    pod.assert_no_leftovers();
}

/// The executable of process `pid`.
fn shim_exe(pid: libc::pid_t) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("read the shim's exe")
}

/// The parent of process `pid`.
fn parent_of(pid: libc::pid_t) -> libc::pid_t {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
    ppid.expect("a PPid line").trim().parse().expect("a pid")
}

/// The status the handler's runtime itself reports for container `id`.
fn runtime_state(c: &Cri, id: &str) -> String {
    let mut state = std::process::Command::new(&c.handler.runtime);
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
    assert_eq!(shim_exe(shim), c.handler.shim);
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
