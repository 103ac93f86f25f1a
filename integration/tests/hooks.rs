//! `hooks`: when each kind runs, what it gets on stdin, and failures.

use integration::{berth_only, json, s, Bundle, Value, HOOK_KINDS};
use std::path::PathBuf;

/// A log file that hooks append to, bind-mounted into the container at the
/// same path so that startContainer hooks (run inside) reach it too.
fn hook_log(b: &mut Bundle) -> PathBuf {
    let dir = b.host_dir("hooks");
    b.bind(&dir, s(&dir), &[]);
    dir.join("log")
}

/// A hook that appends "<name> <the state JSON it got on stdin>" to `log`.
fn logging_hook(b: &Bundle, name: &str, log: &std::path::Path) -> Value {
    b.hook(&format!(
        "printf '%s %s\\n' {name} \"$(cat)\" >> {}",
        s(log)
    ))
}

/// The (hook name, state) pairs in the order the hooks ran.
fn hook_runs(log: &std::path::Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let parse = |l: &str| {
        let (name, state) = l.split_once(' ').unwrap();
        (
            name.to_owned(),
            serde_json::from_str(state).unwrap_or_else(|e| panic!("{name} got {state:?}: {e}")),
        )
    };
    text.lines().map(parse).collect()
}

/// Runs a container that appends "process" to the log, with one logging
/// hook of each kind.
fn run_with_all_hooks() -> (Bundle, Vec<(String, Value)>) {
    let mut b = Bundle::new();
    let log = hook_log(&mut b);
    let hooks: serde_json::Map<String, Value> = HOOK_KINDS
        .iter()
        .map(|name| (name.to_string(), json!([logging_hook(&b, name, &log)])))
        .collect();
    b.set("/hooks", Value::Object(hooks))
        .sh(&format!("echo 'process {{}}' >> {}", s(&log)));
    b.run().assert_ok();
    (b, hook_runs(&log))
}

fn names(runs: &[(String, Value)]) -> Vec<&str> {
    runs.iter().map(|(name, _)| name.as_str()).collect()
}

#[test]
fn hooks_run_once_each_in_lifecycle_order() {
    // The create-time hooks in order, then start's, then poststop.
    let (_b, runs) = run_with_all_hooks();
    let names = names(&runs);
    assert_eq!(names[..3], HOOK_KINDS[..3], "{names:?}");
    let mut start_phase = names[3..6].to_vec();
    start_phase.sort();
    assert_eq!(
        start_phase,
        ["poststart", "process", "startContainer"],
        "{names:?}"
    );
    assert_eq!(names[6..], ["poststop"], "{names:?}");
}

#[test]
fn create_container_hooks_start_in_the_containers_root() {
    // Before pivot_root, in the container's mount namespace: the rootfs
    // is the hook's working directory, so relative paths land in it.
    let mut b = Bundle::new();
    let log = hook_log(&mut b);
    let hook = b.hook(&format!(
        "pwd > {0}; test -x bin/busybox && echo bin >> {0}",
        s(&log)
    ));
    b.set("/hooks/createContainer", json!([hook]));
    b.run().assert_ok();
    let want = format!("{}\nbin\n", s(&b.rootfs()));
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), want);
    b.assert_no_leftovers();
}

#[test]
fn poststart_runs_once_the_process_has_started() {
    berth_only!("runc 1.1.5 runs poststart (with status created) as soon as it releases init, racing startContainer and the process");
    // The poststart hook records the command line of the container's pid:
    // the user's process, not the runtime still setting it up (held back
    // here by a slow startContainer hook).
    let mut b = Bundle::new();
    let slow = b.hook("sleep 0.5");
    let log = hook_log(&mut b);
    let poststart = b.hook(&format!(
        "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); tr '\\0' ' ' < /proc/$pid/cmdline >> {}",
        s(&log)
    ));
    b.set("/hooks/poststart", json!([poststart]))
        .set("/hooks/startContainer", json!([slow]))
        .set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    b.delete(&["--force"]).assert_ok();
    assert_eq!(seen.trim(), "sleep 600");
}

#[test]
fn poststart_sees_status_running() {
    berth_only!("runc 1.1.5 gives poststart the status created");
    let (_b, runs) = run_with_all_hooks();
    let poststart = runs.iter().find(|(name, _)| name == "poststart").unwrap();
    assert_eq!(poststart.1["status"], "running");
}

#[test]
fn hooks_get_the_container_state_on_stdin() {
    let (b, runs) = run_with_all_hooks();
    for (name, state) in runs.iter().filter(|(name, _)| name != "process") {
        assert_eq!(state["id"], b.id.as_str(), "{name}");
        assert_eq!(state["bundle"], s(&b.path), "{name}");
        assert!(state["ociVersion"].is_string(), "{name}");
        assert!(
            state["pid"].as_i64().is_some_and(|pid| pid > 0) || name == "poststop",
            "{name}: {state}"
        );
    }
}

#[test]
fn hooks_see_the_status_of_their_phase() {
    let (_b, runs) = run_with_all_hooks();
    let status = |hook: &str| {
        runs.iter()
            .find(|(name, _)| name == hook)
            .map(|(_, s)| s["status"].clone())
    };
    let expected = [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststop", "stopped"),
    ];
    for (hook, want) in expected {
        assert_eq!(status(hook), Some(json!(want)), "{hook}");
    }
}

#[test]
fn hooks_get_their_args_and_env() {
    let mut b = Bundle::new();
    let log = hook_log(&mut b);
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0 $1 $GREETING\" > {}", s(&log)), "zero", "one"],
        "env": ["GREETING=hello"],
    });
    b.set("/hooks/createRuntime", json!([hook]));
    b.run().assert_ok();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "zero one hello\n");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_cleans_up() {
    let mut b = Bundle::new();
    let hook = b.hook("exit 7");
    b.set("/hooks/createRuntime", json!([hook]));
    b.create().assert_failed().assert_mentions("hook");
    b.assert_no_leftovers();
}

#[test]
fn failing_prestart_hook_fails_run_before_the_process_runs() {
    let mut b = Bundle::new();
    let hook = b.hook("exit 7");
    b.set("/hooks/prestart", json!([hook]))
        .sh("echo should-not-run");
    let out = b.run();
    out.assert_failed().assert_mentions("hook");
    assert_eq!(out.stdout, "");
    b.assert_no_leftovers();
}

#[test]
fn hook_past_its_timeout_is_killed_and_fails_create() {
    // `exec` so that the hook is the sleep itself: a leftover sleep would
    // carry the marker and be found.
    let mut b = Bundle::new();
    let mut hook = b.hook("exec sleep 600");
    hook["timeout"] = json!(1);
    b.set("/hooks/createRuntime", json!([hook]));
    b.create()
        .assert_failed()
        .assert_mentions_any(&["timeout", "timed out"]);
    b.assert_no_leftovers();
}

#[test]
fn a_failing_hook_is_named_by_its_kind_and_index() {
    // runc's words ("error running createContainer hook #1:"), which
    // people and runc's own suite grep for; the process never runs.
    berth_only!(
        "runc 1.1.5 leaves the kind out (\"error running hook #1:\"); runc 1.2 and later name it"
    );
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        let mut b = Bundle::new();
        let (ok, failing) = (b.hook("true"), b.hook("exit 1"));
        b.set(&format!("/hooks/{kind}"), json!([ok, failing]))
            .sh("echo should-not-run");
        let out = b.run();
        out.assert_failed()
            .assert_mentions(&format!("error running {kind} hook #1:"));
        assert_eq!(out.stdout, "", "{kind}");
    }
}

/// Two `kind` hooks: the first fails, the second appends "second ran" to
/// the host file returned.
fn failing_then_logging(b: &mut Bundle, kind: &str) -> PathBuf {
    let log = b.dir.join("second");
    let (failing, second) = (
        b.hook("exit 3"),
        b.hook(&format!("echo second ran >> {}", s(&log))),
    );
    b.set(&format!("/hooks/{kind}"), json!([failing, second]));
    log
}

#[test]
fn a_failing_poststart_hook_fails_start_and_destroys_the_container() {
    // The runtime spec since 1.3 (and runc since 2026): an error, the
    // container stopped and destroyed, its poststop hooks run.
    berth_only!("runc 1.1.5 kills the container but keeps it (stopped) and runs no poststop hook");
    let mut b = Bundle::new();
    let log = failing_then_logging(&mut b, "poststart");
    let poststop_log = b.dir.join("poststop");
    let poststop = b.hook(&format!("echo poststop ran >> {}", s(&poststop_log)));
    b.set("/hooks/poststop", json!([poststop])).sh("sleep 600");
    b.create().assert_ok();
    b.start()
        .assert_failed()
        .assert_mentions("error running poststart hook #0");
    assert!(!log.exists(), "the hook after the failing one ran");
    assert_eq!(
        std::fs::read_to_string(&poststop_log).unwrap(),
        "poststop ran\n"
    );
    b.state().assert_failed().assert_mentions("does not exist");
    b.assert_no_leftovers();
}

#[test]
fn run_fails_and_cleans_up_when_a_poststart_hook_fails() {
    // runc's `run` (not a command of the runtime spec) does so.
    let mut b = Bundle::new();
    let hook = b.hook("exit 3");
    b.set("/hooks/poststart", json!([hook])).sh("sleep 600");
    b.run().assert_failed().assert_mentions("hook #0");
    b.assert_no_leftovers();
}

#[test]
fn every_poststop_hook_runs_even_after_one_fails() {
    berth_only!(
        "runc 1.1.5 skips the poststop hooks after a failing one; the runtime spec runs them all"
    );
    let mut b = Bundle::new();
    let log = failing_then_logging(&mut b, "poststop");
    b.run()
        .assert_ok()
        .assert_mentions("error running poststop hook #0");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "second ran\n");
    b.assert_no_leftovers();
}

#[test]
fn a_hook_killed_by_a_signal_is_named_by_it() {
    let mut b = Bundle::new();
    let hook = b.hook("kill -SYS $$");
    b.set("/hooks/createRuntime", json!([hook]));
    b.create()
        .assert_failed()
        .assert_mentions("bad system call");
    b.assert_no_leftovers();
}
