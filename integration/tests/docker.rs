//! dockerd (20.10, or 26 and 28 on a stack) driving berth, each way
//! Docker users configure it (`BERTH_DOCKER`; `runc` runs the same
//! scenarios on Docker's own runc to prove them honest). See
//! `integration::docker`; the scenarios podman shares are in
//! `integration::engine_scenarios`.

use integration::engine_scenarios::{self as scenarios, PRINT_SIZE, SLEEPER};
use integration::{docker_or_skip, in_terminal, poll, CgroupOf, Engine};
use std::os::unix::fs::MetadataExt;

#[test]
fn the_daemon_and_client_are_the_stacks_docker() {
    let d = docker_or_skip!();
    let want = integration::stack::engines().unwrap().docker;
    let format = "{{.Server.Version}} {{.Client.Version}}";
    let out = d.cli(&["version", "--format", format]);
    let versions: Vec<&str> = out.assert_ok().stdout.split_whitespace().collect();
    assert!(
        versions.len() == 2 && versions.iter().all(|v| v.starts_with(want)),
        "expected Docker {want}x: {out:#?}"
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    scenarios::run_prints_the_output_and_exits_with_the_code(docker_or_skip!());
}

#[test]
fn the_shim_and_runtime_under_test_serve_the_container() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&[], &SLEEPER);
    let shim = c.shim_pid().expect("a shim serves the container");
    let exe = std::fs::metadata(format!("/proc/{shim}/exe")).unwrap();
    let want = std::fs::metadata(d.host_path(&d.shim)).unwrap();
    assert_eq!(
        (exe.dev(), exe.ino()),
        (want.dev(), want.ino()),
        "the shim's binary"
    );
    // The runtime Docker names (BinaryName) keeps the container's state
    // where Docker says (Root): asking that binary there finds it.
    scenarios::assert_the_runtime_serves(&c, &d.binary);
    c.remove();
}

#[test]
fn exec_runs_in_the_container_as_the_user_asked() {
    scenarios::exec_runs_in_the_container_as_the_user_asked(docker_or_skip!());
}

#[test]
fn stop_sends_sigterm_and_docker_keeps_the_exit_code() {
    scenarios::stop_sends_sigterm_and_keeps_the_exit_code(docker_or_skip!());
}

#[test]
fn kill_ends_a_container_without_a_handler_with_137() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&[], &SLEEPER);
    c.verb("kill", &[], &[]).assert_ok();
    c.wait_for("{{.State.Status}} {{.State.ExitCode}}", "exited 137");
    c.remove();
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    scenarios::logs_keep_stdout_and_stderr_apart(docker_or_skip!());
}

#[test]
fn stats_and_top_show_the_limit_and_the_processes() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&["-m", "256m"], &SLEEPER);
    let stats = || {
        let args = ["--no-stream", "--format", "{{.MemUsage}} pids={{.PIDs}}"];
        c.engine.cli(&[&["stats"][..], &args, &[&c.name]].concat())
    };
    // Until sh has forked its child: two processes under a 256 MiB limit.
    let both =
        |out: &integration::Out| out.stdout.contains("/ 256MiB") && out.stdout.contains("pids=2");
    poll("stats never showed both", stats, both);
    let top = c.verb("top", &[], &[]);
    for cmd in ["sleep 1000", "sleep 1001"] {
        assert!(top.stdout.contains(cmd), "{top:#?}");
    }
    c.remove();
}

#[test]
fn pause_freezes_the_container_and_unpause_thaws_it() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&[], &SLEEPER);
    let cgroup = CgroupOf::pid(c.pid());
    let frozen = || cgroup.read(("freezer", "freezer.state"), "cgroup.freeze");
    c.verb("pause", &[], &[]).assert_ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "paused");
    assert!(["FROZEN", "1"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("exec", &[], &["true"]).assert_mentions("paused");
    c.verb("unpause", &[], &[]).assert_ok();
    assert!(["THAWED", "0"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("exec", &[], &["true"]).assert_ok();
    c.remove();
}

#[test]
fn update_changes_the_memory_limit_of_a_running_container() {
    let d = docker_or_skip!();
    let c = d.container();
    // Generous limits: once in CI, runc 1.1's init died at start under 64m
    // (its copy of itself counts against the limit).
    c.run_detached(&["-m", "256m"], &SLEEPER);
    let flags = ["-m", "512m", "--memory-swap", "1g"];
    c.verb("update", &flags, &[]).assert_ok();
    let limit = CgroupOf::pid(c.pid()).read(("memory", "memory.limit_in_bytes"), "memory.max");
    assert_eq!(limit, (512 << 20).to_string());
    c.remove();
}

#[test]
fn run_it_gives_the_process_a_terminal_of_the_clients_size() {
    scenarios::run_it_gives_the_process_a_terminal_of_the_clients_size(docker_or_skip!());
}

#[test]
fn exec_it_gives_the_process_a_terminal_of_the_clients_size() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&[], &SLEEPER);
    let script = format!("{PRINT_SIZE}; exit 6");
    let mut argv = d.client_argv();
    argv.extend(["exec", "-it", &c.name, "sh", "-c", &script].map(str::to_owned));
    let out = in_terminal(&argv, (20, 77), &d.logs());
    assert_eq!(out.code, 6, "{out:#?}");
    assert!(out.stdout.contains("size 20 77\n/dev/pts/"), "{out:#?}");
    c.remove();
}

#[test]
fn on_failure_restarts_the_container_as_often_as_asked() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(
        &["--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 9"],
    );
    c.wait_for(
        "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
        "2 exited 9",
    );
    assert_eq!(c.verb("logs", &[], &[]).stdout, "run\nrun\nrun\n");
    c.remove();
}

#[test]
fn restart_runs_the_container_again() {
    let d = docker_or_skip!();
    let c = d.container();
    c.run_detached(&[], &["sh", "-c", "echo up; exec sleep 1000"]);
    let first = c.pid();
    c.verb("restart", &["-t", "1"], &[]).assert_ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "running");
    assert_ne!(c.pid(), first, "a new init");
    assert_eq!(c.verb("logs", &[], &[]).stdout, "up\nup\n");
    c.remove();
}

#[test]
fn in_the_hosts_pid_namespace_init_s_exit_ends_the_rest() {
    let d = docker_or_skip!();
    let c = d.container();
    let script = "sleep 1000 >/dev/null 2>&1 & echo started";
    let out = c.run(&["--pid", "host"], &["sh", "-c", script]);
    assert_eq!(out.assert_ok().stdout, "started\n");
    // The kernel ends nothing here: the shim (kill --all at the exit) or
    // the runtime (at delete, which Docker sends at once) must.
    c.assert_no_processes();
    c.remove();
}

#[test]
fn dockers_seccomp_profile_and_capabilities_apply() {
    let d = docker_or_skip!();
    let c = d.container();
    let script = "grep -E '^(Seccomp|CapEff):' /proc/self/status; unshare -U true";
    let out = c.run(&["--rm"], &["sh", "-c", script]);
    // Docker's 14 default capabilities; the profile refuses unshare.
    assert_eq!(
        out.stdout, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n",
        "{out:#?}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    assert_ne!(out.code, 0, "{out:#?}");
    c.assert_no_leftovers();
}

#[test]
fn a_memory_hog_is_oom_killed_and_docker_is_told() {
    let d = docker_or_skip!();
    let c = d.container();
    // tail keeps the whole "line" of /dev/zero, which never ends. It
    // starts a moment late: containerd's stock shim watches for the OOM
    // only once start has returned, and misses a kill before that.
    let flags = ["-m", "16m", "--memory-swap", "16m"];
    let out = c.run(&flags, &["sh", "-c", "sleep 1; tail /dev/zero"]);
    assert_eq!(out.code, 137, "{out:#?}");
    // Docker learns of the OOM kill only from the shim's OOM event.
    c.wait_for("{{.State.OOMKilled}}", "true");
    c.remove();
}

/// hack/test leaves this out for the host's Docker, which runs without a
/// network of its own.
#[test]
fn a_published_port_is_reached_from_loopback() {
    scenarios::a_published_port_is_reached_from_loopback(docker_or_skip!());
}

#[test]
fn a_missing_command_fails_clearly_and_leaves_nothing() {
    let d = docker_or_skip!();
    let c = d.container();
    let out = c.run(&["--rm"], &["/no/such/binary"]);
    assert_eq!(out.code, 127, "{out:#?}");
    out.assert_mentions("/no/such/binary");
    assert!(!d.host_path(&d.runtime_root).join(c.id()).exists());
    c.assert_no_leftovers();
}
