//! The scenarios the Docker and podman suites share: each drives one
//! container through the engine's client and asserts what a user sees.
//! `tests/docker.rs` and `tests/podman.rs` run them under their own names.

use crate::engine::{Container, Engine};
use crate::exec::poll;
use crate::in_terminal;
use crate::stack::{ROOTLESS_USER, SUBORDINATE};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A process that runs until killed, with one child beside it.
pub const SLEEPER: [&str; 3] = ["sh", "-c", "sleep 1000 & exec sleep 1001"];

/// A script that waits (briefly) for the terminal to take the client's
/// size, which the engine sets just after the process starts, then
/// prints it.
pub const PRINT_SIZE: &str = "for i in $(seq 100); do s=$(stty size 2>/dev/null); \
                              [ \"$s\" = '20 77' ] && break; sleep 0.05; done; echo size $s; tty";

#[track_caller]
pub fn run_prints_the_output_and_exits_with_the_code(engine: &dyn Engine) {
    let c = Container::new(engine);
    let out = c.run(
        &["--rm"],
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
    );
    assert_eq!((out.code, out.stdout.as_str()), (3, "to-out\n"), "{out:#?}");
    assert!(out.stderr.contains("to-err\n"), "{out:#?}");
    c.assert_no_leftovers();
}

/// The runtime `binary`, asked where the engine tells it to keep state,
/// finds the running container `c` with the pid the engine reports.
#[track_caller]
pub fn assert_the_runtime_serves(c: &Container, binary: &Path) {
    let mut state = c.engine.program(&binary);
    state.arg("--root").arg(c.engine.runtime_root());
    state.args(["state", &c.id()]);
    let out = crate::exec::run(&mut state, &c.engine.logs());
    let state: serde_json::Value = serde_json::from_str(&out.assert_ok().stdout).unwrap();
    assert_eq!(state["status"], "running", "{state:#}");
    assert_eq!(state["pid"], c.docker_pid(), "{state:#}");
}

#[track_caller]
pub fn exec_runs_in_the_container_as_the_user_asked(engine: &dyn Engine) {
    let c = Container::new(engine);
    c.run_detached(&["-e", "FROM_RUN=yes"], &SLEEPER);
    // The daemon's own files (the workspace's target dir, which the
    // suite's daemons see) are not in the container's root.
    let target = crate::workspace().join("target");
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
    c.remove();
}

#[track_caller]
pub fn stop_sends_sigterm_and_keeps_the_exit_code(engine: &dyn Engine) {
    let c = Container::new(engine);
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
    c.remove();
}

#[track_caller]
pub fn logs_keep_stdout_and_stderr_apart(engine: &dyn Engine) {
    let c = Container::new(engine);
    let script = "echo out-1; echo err-1 >&2; echo out-2";
    c.run(&[], &["sh", "-c", script]).assert_ok();
    let logs = c.verb("logs", &[], &[]);
    assert_eq!(logs.assert_ok().stdout, "out-1\nout-2\n", "{logs:#?}");
    assert_eq!(logs.stderr, "err-1\n", "{logs:#?}");
    c.remove();
}

#[track_caller]
pub fn run_it_gives_the_process_a_terminal_of_the_clients_size(engine: &dyn Engine) {
    let c = Container::new(engine);
    // A pause before exit: podman 5.4 once lost the whole output of a
    // container that printed and exited at once (its attach, not the
    // runtime: the exit code came through).
    let script = format!("{PRINT_SIZE}; sleep 0.5; exit 5");
    let mut argv = engine.client_argv();
    argv.extend(c.run_args(&["--rm", "-it"], &["sh", "-c", &script]));
    let out = in_terminal(&argv, (20, 77), &engine.logs());
    assert_eq!(out.code, 5, "{out:#?}");
    assert!(out.stdout.contains("size 20 77\n/dev/pts/0\n"), "{out:#?}");
    c.assert_no_leftovers();
}

/// On a stack's network of its own, where the engine has its bridge and
/// firewall rules.
#[track_caller]
pub fn a_published_port_is_reached_from_loopback(engine: &dyn Engine) {
    let c = Container::new(engine);
    let script = "mkdir -p /www && echo served-by-the-container >/www/index.html && \
                  exec httpd -f -p 8080 -h /www";
    c.run_detached(&["-p", "127.0.0.1:18080:8080"], &["sh", "-c", script]);
    assert_eq!(engine.http_get(18080).stdout, "served-by-the-container\n");
    c.remove();
}

/// A rootless engine's container: the runtime `binary` serves it, and its
/// root is the user who runs the engine.
#[track_caller]
pub fn a_rootless_container_is_the_users_and_the_runtime_serves_it(
    engine: &dyn Engine,
    binary: &Path,
) {
    let c = Container::new(engine);
    c.run_detached(&[], &SLEEPER);
    assert_the_runtime_serves(&c, binary);
    let init = std::fs::metadata(format!("/proc/{}", c.pid())).unwrap();
    assert_eq!(
        init.uid(),
        ROOTLESS_USER,
        "the container's root is the user"
    );
    c.remove();
}

/// A rootless engine maps the container's root to the user and the rest
/// to the user's subordinate ids.
#[track_caller]
pub fn the_containers_ids_are_the_users_own_and_subordinate_ones(engine: &dyn Engine) {
    let c = Container::new(engine);
    let out = c.run(
        &["--rm"],
        &["cat", "/proc/self/uid_map", "/proc/self/gid_map"],
    );
    let lines = out.assert_ok().stdout.lines();
    let words: Vec<String> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let map = [
        format!("0 {ROOTLESS_USER} 1"),
        format!("1 {SUBORDINATE} 65536"),
    ];
    assert_eq!(words, [&map[..], &map[..]].concat(), "{out:#?}");
    c.assert_no_leftovers();
}
