//! create / start / run / state / kill / delete and the statuses between them.

use integration::{berth_only, json, s, Bundle};
use std::os::unix::process::CommandExt;
use std::path::Path;

/// A container that reports TERM and USR1 through its exit code and says
/// "ready" once its traps are set. As PID 1 of its namespace it would ignore
/// signals it has no handler for, so the traps are what make TERM observable.
const TRAPS: &str = "trap 'exit 42' TERM; trap 'exit 43' USR1; echo ready; sleep 1000 & wait";

/// Runs [`TRAPS`] in the foreground, sends `kill ID <signal...>`, and returns
/// the exit code of `run`.
fn exit_code_after_kill(signal: &[&str]) -> i32 {
    let mut b = Bundle::new();
    b.sh(TRAPS);
    let running = b.spawn_run();
    running.wait_for_line("ready");
    b.kill(signal).assert_ok();
    let code = running.exit_code();
    b.assert_no_leftovers();
    code
}

#[test]
fn run_exits_0_when_the_process_does() {
    let mut b = Bundle::new();
    assert_eq!(b.sh("exit 0").run().assert_ok().code, 0);
    b.assert_no_leftovers();
}

#[test]
fn run_exits_with_the_process_exit_code() {
    let mut b = Bundle::new();
    assert_eq!(b.sh("exit 3").run().code, 3);
    b.assert_no_leftovers();
}

#[test]
fn run_exits_128_plus_signal_when_killed() {
    // Also covers a signal name without the SIG prefix.
    assert_eq!(exit_code_after_kill(&["KILL"]), 128 + 9);
}

#[test]
fn run_passes_stdout_and_stderr_through() {
    let mut b = Bundle::new();
    let out = b.sh("echo to-out; echo to-err >&2").run();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("to-out\n", "to-err\n")
    );
}

#[test]
fn kill_accepts_the_name_with_sig() {
    assert_eq!(exit_code_after_kill(&["SIGKILL"]), 137);
}

#[test]
fn kill_accepts_a_number() {
    assert_eq!(exit_code_after_kill(&["10"]), 43, "10 is SIGUSR1");
}

#[test]
fn kill_sends_term_by_default() {
    assert_eq!(exit_code_after_kill(&[]), 42);
}

#[test]
fn kill_all_kills_every_process() {
    // containerd's shim sends `kill --all`. Here a PID namespace ends the
    // rest with init; without one, finding them takes the container's
    // cgroup, which is a later issue.
    let mut b = Bundle::new();
    b.sh("sleep 1000 & echo ready; wait");
    let running = b.spawn_run();
    running.wait_for_line("ready");
    b.rt(&["kill", "--all", &b.id, "KILL"]).assert_ok();
    assert_eq!(running.exit_code(), 137);
    b.assert_no_leftovers();
}

#[test]
fn kill_all_ends_what_init_left_in_a_pid_namespace_it_did_not_own() {
    // Without a pid namespace, init's exit ends nothing else: the shims
    // then send `kill --all` to the stopped container, which runc allows.
    let b = without_pid_namespace("sleep 1000 >/dev/null 2>&1 &");
    b.rt(&["kill", "--all", &b.id, "KILL"]).assert_ok();
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn delete_ends_what_init_left_in_a_pid_namespace_it_did_not_own() {
    let b = without_pid_namespace("sleep 1000 >/dev/null 2>&1 &");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn kill_sigkill_takes_every_process_without_a_pid_namespace() {
    berth_only!("runc 1.1.5 kills init only; runc 1.2 and later, as berth, the whole cgroup");
    let mut b = Bundle::new();
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "pid");
    });
    b.sh("sleep 1000 & sleep 1000 & echo ready; wait");
    let running = b.spawn_run();
    running.wait_for_line("ready");
    b.kill(&["KILL"]).assert_ok();
    assert_eq!(running.exit_code(), 137);
    b.assert_no_leftovers();
}

#[test]
fn kill_sigkill_ends_what_init_left_without_a_pid_namespace() {
    berth_only!("runc 1.1.5 says the stopped container is not running; runc 1.2 and later, as berth, kill the rest");
    let b = without_pid_namespace("sleep 1000 >/dev/null 2>&1 &");
    b.kill(&["KILL"]).assert_ok();
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

/// A stopped container without a pid namespace of its own, whose `script`
/// left a process running.
fn without_pid_namespace(script: &str) -> Bundle {
    let mut b = Bundle::new();
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "pid");
    });
    b.sh(script);
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    assert!(!b.leftovers().is_empty(), "what init started outlives it");
    b
}

#[test]
fn create_parks_init_until_start() {
    let mut b = Bundle::new();
    let host = b.host_dir("shared");
    b.bind(&host, "/shared", &[]).sh("echo ran > /shared/ran");
    b.create().assert_ok();
    let state = b.state_json();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().expect("pid");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} is alive"
    );
    assert!(!host.join("ran").exists(), "the process ran before start");

    b.start().assert_ok();
    b.wait_status("stopped");
    assert_eq!(std::fs::read_to_string(host.join("ran")).unwrap(), "ran\n");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn start_makes_the_status_running() {
    let mut b = Bundle::new();
    b.sh("sleep 1000").create().assert_ok();
    b.start().assert_ok();
    assert_eq!(b.state_json()["status"], "running");
}

#[test]
fn create_writes_the_pid_file() {
    let b = Bundle::new();
    let pid_file = b.dir.join("init.pid");
    b.rt(&[
        "create",
        "--bundle",
        s(&b.path),
        "--pid-file",
        s(&pid_file),
        &b.id,
    ])
    .assert_ok();
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        json!(written.trim().parse::<i64>().unwrap()),
        b.state_json()["pid"]
    );
}

#[test]
fn create_hands_init_to_the_callers_subreaper() {
    // A shell that is a child subreaper calls create, as a shim would; once
    // the runtime exits, init must be the shell's child.
    let b = Bundle::new();
    let script =
        r#""$0" "$@" && pid=$(cat init.pid) && grep PPid: /proc/$pid/status && echo "self: $$""#;
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", script])
        .arg(integration::runtime())
        .arg("--root")
        .arg(&b.state_root);
    cmd.args([
        "create",
        "--pid-file",
        "init.pid",
        "--bundle",
        s(&b.path),
        &b.id,
    ]);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe { cmd.pre_exec(set_child_subreaper) };
    let out = b.output(cmd.current_dir(&b.dir));
    let fields: Vec<&str> = out.assert_ok().stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{out:?}");
    assert_eq!(fields[1], fields[3], "init's parent is the caller: {out:?}");
}

fn set_child_subreaper() -> std::io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer and no pointers.
    match unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[test]
fn state_has_the_runc_shape() {
    let mut b = Bundle::new();
    b.set("/annotations", json!({"org.example.test": "yes"}));
    b.create().assert_ok();
    let state = b.state_json();
    let keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
        "annotations",
    ] {
        assert!(state.get(key).is_some(), "state lacks {key}: {keys:?}");
    }
    assert!(state["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(state["id"], b.id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_eq!(state["status"], "created");
    assert_eq!(state["bundle"], s(&b.path));
    assert_eq!(state["rootfs"], s(&b.rootfs()));
    assert!(state["owner"].is_string());
    assert_eq!(state["annotations"], json!({"org.example.test": "yes"}));
    let created = state["created"].as_str().unwrap();
    assert!(
        created.len() > 20 && created.as_bytes()[10] == b'T',
        "RFC 3339 time: {created}"
    );
}

#[test]
fn state_of_an_exited_container_is_stopped() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    assert_eq!(b.state_json()["pid"], 0, "a stopped container has no pid");
}

#[test]
fn delete_of_a_stopped_container_leaves_nothing() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    b.delete(&[]).assert_ok();
    b.state().assert_failed().assert_mentions("does not exist");
    b.assert_no_leftovers();
}

#[test]
fn delete_of_a_created_container_kills_init() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn delete_force_stops_a_running_container() {
    let mut b = Bundle::new();
    b.sh("sleep 1000").create().assert_ok();
    b.start().assert_ok();
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn kill_of_a_stopped_container_says_not_running() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    b.kill(&["KILL"])
        .assert_failed()
        .assert_mentions("container not running");
}

#[test]
fn kill_0_probes_a_running_container_and_leaves_it_running() {
    let mut b = Bundle::new();
    b.sh("sleep 1000").create().assert_ok();
    b.start().assert_ok();
    let probe = b.kill(&["0"]);
    let after = b.state_json()["status"].clone();
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
    probe.assert_ok();
    assert_eq!(after, "running");
}

#[test]
fn kill_0_of_a_stopped_container_says_not_running() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    b.kill(&["0"])
        .assert_failed()
        .assert_mentions("container not running");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn unknown_id_says_does_not_exist() {
    let b = Bundle::new();
    for verb in ["state", "start", "kill", "delete"] {
        b.rt(&[verb, "no-such-container"])
            .assert_failed()
            .assert_mentions("does not exist");
    }
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    b.rt(&["run", "--detach", "--bundle", s(&b.path), &b.id])
        .assert_ok();
    assert_eq!(b.state_json()["status"], "running");
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn run_keep_leaves_the_stopped_container() {
    let mut b = Bundle::new();
    b.sh("exit 0");
    b.rt(&["run", "--keep", "--bundle", s(&b.path), &b.id])
        .assert_ok();
    assert_eq!(b.state_json()["status"], "stopped");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

/// Listens at `sock` for one pidfd (as a supervisor does) and returns it.
fn pidfd_listener(sock: &std::path::Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        integration::receive_fd(&conn, &mut [0u8; 64], "--pidfd-socket").1
    })
}

/// Sends `signal` through `pidfd`; 0 on success.
fn pidfd_signal(pidfd: &std::os::fd::OwnedFd, signal: i32) -> i64 {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal takes the pidfd, a signal and no info.
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, 0, 0) }
}

#[test]
fn pidfd_socket_gets_a_pidfd_of_init_and_of_an_exec() {
    berth_only!("--pidfd-socket came with runc 1.2");
    let mut b = Bundle::new();
    b.set("/process/args", json!(["sleep", "600"]));
    let sock = b.dir.join("pidfd.sock");
    let got = pidfd_listener(&sock);
    b.rt(&[
        "create",
        "--pidfd-socket",
        s(&sock),
        "--bundle",
        s(&b.path),
        &b.id,
    ])
    .assert_ok();
    b.start().assert_ok();
    let init = got.join().unwrap();
    std::fs::remove_file(&sock).unwrap();
    let got = pidfd_listener(&sock);
    b.rt(&[
        "exec",
        "-d",
        "--pidfd-socket",
        s(&sock),
        &b.id,
        "sleep",
        "600",
    ])
    .assert_ok();
    let exec = got.join().unwrap();
    assert_eq!(pidfd_signal(&exec, 0), 0, "the exec'd process is there");
    assert_eq!(pidfd_signal(&init, libc::SIGKILL), 0, "init killed");
    b.wait_status("stopped");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn kill_term_stops_a_created_container() {
    // Parked init is pid 1 of its namespace, which the kernel spares
    // signals without a handler; runc's dies, and so must berth's.
    let mut b = Bundle::new();
    b.set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.kill(&["TERM"]).assert_ok();
    b.wait_status("stopped");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}
