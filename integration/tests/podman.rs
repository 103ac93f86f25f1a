//! podman 5.4 (trixie) and 5.8 (sid) running berth, as podman users run it:
//! `--runtime berth` named in containers.conf (`BERTH_PODMAN=conf`, the
//! default) or `--runtime` with berth's path (`path`); `runc` runs the
//! same scenarios on the stack's runc to prove them honest. See
//! `integration::podman`.

use integration::{in_terminal, podman_or_skip, poll, CgroupOf, Container, Engine};

/// A process that runs until killed, with one child beside it.
const SLEEPER: [&str; 3] = ["sh", "-c", "sleep 1000 & exec sleep 1001"];

/// Removes the container and checks that nothing of it is left.
#[track_caller]
fn remove(c: &Container) {
    c.verb("rm", &["-f", "-t", "0"], &[]).assert_ok();
    c.assert_no_leftovers();
}

#[test]
fn the_client_is_the_stacks_podman() {
    let p = podman_or_skip!();
    let want = integration::stack::engines().unwrap().podman.unwrap();
    let out = p.cli(&["version", "--format", "{{.Client.Version}}"]);
    assert!(
        out.assert_ok().stdout.starts_with(want),
        "expected podman {want}x: {out:#?}"
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    let p = podman_or_skip!();
    let c = p.container();
    let out = c.run(
        &["--rm"],
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
    );
    assert_eq!((out.code, out.stdout.as_str()), (3, "to-out\n"), "{out:#?}");
    assert!(out.stderr.contains("to-err\n"), "{out:#?}");
    c.assert_no_leftovers();
}

#[test]
fn the_runtime_under_test_serves_the_container() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&[], &SLEEPER);
    let mut state = p.program(&p.binary);
    state
        .arg("--root")
        .arg(p.runtime_root())
        .args(["state", &c.id()]);
    let out = integration::run_command(&mut state, &p.logs());
    let state: serde_json::Value = serde_json::from_str(&out.assert_ok().stdout).unwrap();
    assert_eq!(state["status"], "running", "{state:#}");
    assert_eq!(state["pid"], c.docker_pid(), "{state:#}");
    remove(&c);
}

#[test]
fn exec_runs_in_the_container_as_the_user_asked() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&["-e", "FROM_RUN=yes"], &SLEEPER);
    // The daemon's own files (the workspace's target dir, which the
    // suite's daemons see) are not in the container's root.
    let target = integration::workspace().join("target");
    let script = format!(
        "echo $FROM_RUN $(id -u):$(id -g); test -e {} && echo outside; exit 4",
        target.display()
    );
    let out = c.verb("exec", &["-u", "1000:1001"], &["sh", "-c", &script]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (4, "yes 1000:1001\n"),
        "{out:#?}"
    );
    remove(&c);
}

#[test]
fn run_it_gives_the_process_a_terminal_of_the_clients_size() {
    let p = podman_or_skip!();
    let c = p.container();
    let script = "for i in $(seq 100); do s=$(stty size 2>/dev/null); \
                  [ \"$s\" = '20 77' ] && break; sleep 0.05; done; echo size $s; tty; exit 5";
    let mut argv = p.client_argv();
    argv.extend(c.run_args(&["--rm", "-it"], &["sh", "-c", script]));
    let out = in_terminal(&argv, (20, 77), &p.logs());
    assert_eq!(out.code, 5, "{out:#?}");
    assert!(out.stdout.contains("size 20 77\n/dev/pts/0\n"), "{out:#?}");
    c.assert_no_leftovers();
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run(&[], &["sh", "-c", "echo out-1; echo err-1 >&2; echo out-2"])
        .assert_ok();
    let logs = c.verb("logs", &[], &[]);
    assert_eq!(logs.assert_ok().stdout, "out-1\nout-2\n", "{logs:#?}");
    assert_eq!(logs.stderr, "err-1\n", "{logs:#?}");
    remove(&c);
}

#[test]
fn stop_sends_sigterm_and_podman_keeps_the_exit_code() {
    let p = podman_or_skip!();
    let c = p.container();
    let script = "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.1; done";
    c.run_detached(&[], &["sh", "-c", script]);
    let logs = || c.verb("logs", &[], &[]).stdout;
    poll("the trap was never set", logs, |l| l.contains("started"));
    c.verb("stop", &["-t", "30"], &[]).assert_ok();
    assert_eq!(
        c.inspect("{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert_eq!(c.verb("logs", &[], &[]).stdout, "started\ngot-term\n");
    remove(&c);
}

#[test]
fn pause_freezes_the_container_and_unpause_thaws_it() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&[], &SLEEPER);
    let cgroup = CgroupOf::pid(c.pid());
    let frozen = || cgroup.read(("freezer", "freezer.state"), "cgroup.freeze");
    c.verb("pause", &[], &[]).assert_ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "paused");
    assert!(["FROZEN", "1"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("unpause", &[], &[]).assert_ok();
    assert!(["THAWED", "0"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("exec", &[], &["true"]).assert_ok();
    remove(&c);
}

#[test]
fn a_memory_limit_reaches_the_containers_cgroup() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&["-m", "64m"], &SLEEPER);
    let limit = CgroupOf::pid(c.pid()).read(("memory", "memory.limit_in_bytes"), "memory.max");
    assert_eq!(limit, (64 << 20).to_string());
    remove(&c);
}

#[test]
fn a_published_port_is_reached_from_loopback() {
    let p = podman_or_skip!();
    let c = p.container();
    let script = "mkdir -p /www && echo served-by-the-container >/www/index.html && \
                  exec httpd -f -p 8080 -h /www";
    c.run_detached(&["-p", "127.0.0.1:18080:8080"], &["sh", "-c", script]);
    let out = p.http_get(18080);
    assert_eq!(out.stdout, "served-by-the-container\n");
    remove(&c);
}
