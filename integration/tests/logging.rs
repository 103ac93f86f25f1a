//! `--log FILE --log-format json`: one JSON object per line, and a failure
//! ends with an error line that names the cause.

use integration::{berth_only, json, s, Bundle, Value};

#[test]
fn json_log_ends_with_an_error_naming_the_cause() {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["/no/such-binary"]));
    let log = b.dir.join("log.json");
    b.rt(&[
        "--log",
        s(&log),
        "--log-format",
        "json",
        "create",
        "--bundle",
        s(&b.path),
        &b.id,
    ])
    .assert_failed();
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    for line in &lines {
        for key in ["level", "msg", "time"] {
            assert!(line[key].is_string(), "log line lacks {key}: {line}");
        }
    }
    let last = lines.last().expect("at least one log line");
    assert_eq!(last["level"], "error", "{last}");
    assert!(
        last["msg"].as_str().unwrap().contains("/no/such-binary"),
        "{last}"
    );
    b.assert_no_leftovers();
}

#[test]
fn log_equals_form_and_text_format() {
    let b = Bundle::new();
    let log = b.dir.join("log.txt");
    b.rt(&[
        &format!("--log={}", s(&log)),
        "--log-format=text",
        "start",
        "no-such-container",
    ])
    .assert_failed();
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    assert!(text.contains("does not exist"), "{text}");
}

/// The records of a JSON log file, each checked to be one.
fn json_records(log: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).expect("the log file was written");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn debug_records_appear_with_debug_only() {
    let mut b = Bundle::new();
    b.sh("echo hi");
    let mut debug_records = Vec::new();
    for flags in [&["--debug"][..], &[]] {
        let log = b.dir.join(format!("log{}.json", flags.len()));
        let mut args = flags.to_vec();
        args.extend(["--log", s(&log), "--log-format", "json"]);
        args.extend(["run", "--bundle", s(&b.path), &b.id]);
        assert_eq!(b.rt(&args).assert_ok().stdout, "hi\n");
        let records = json_records(&log);
        debug_records.push(records.iter().filter(|r| r["level"] == "debug").count());
    }
    assert!(debug_records[0] > 0, "--debug wrote no debug record");
    assert_eq!(debug_records[1], 0, "debug records without --debug");
    b.assert_no_leftovers();
}

#[test]
fn debug_traces_each_stage_of_run() {
    berth_only!("the stages are berth's own words; runc logs its nsexec steps");
    let mut b = Bundle::new();
    b.sh("echo hi");
    let out = b.rt(&["--debug", "run", "--bundle", s(&b.path), &b.id]);
    assert_eq!(out.assert_ok().stdout, "hi\n");
    let debug: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("level=debug"))
        .collect();
    let stages = [
        "bundle",
        "first stage",
        "container's process is",
        "rootfs is mounted",
        "process is set up",
        "waits for start",
        "released",
        "exited with 0",
        "deleted",
    ];
    let mut lines = debug.iter();
    for stage in stages {
        assert!(
            lines.any(|l| l.contains(stage)),
            "no debug line for {stage:?} in order: {debug:#?}"
        );
    }
    b.assert_no_leftovers();
}

#[test]
fn debug_traces_the_container_side_too() {
    berth_only!("the stages are berth's own words");
    // The container side's records reach berth's log (over the setup
    // channel), for init and for an exec'd process.
    let mut b = Bundle::new();
    b.sh("sleep 600");
    let log = b.dir.join("debug.log");
    let logged = |args: &[&str]| {
        let mut all = vec!["--debug", "--log", s(&log)];
        all.extend(args);
        b.rt(&all).assert_ok();
    };
    logged(&["run", "-d", "--bundle", s(&b.path), &b.id]);
    logged(&["exec", &b.id, "true"]);
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    for phrase in [
        "init: setting up the container",
        "init: set up, parked until start",
        "exec: setting up the process",
        "exec: the process is set up",
    ] {
        assert!(text.contains(phrase), "no {phrase:?} in:\n{text}");
    }
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn debug_says_how_the_runtime_binary_is_sealed() {
    berth_only!("berth's own words");
    let mut b = Bundle::new();
    b.sh("true");
    let out = b.rt(&["--debug", "run", "--bundle", s(&b.path), &b.id]);
    out.assert_ok().assert_mentions_any(&[
        "running from a read-only overlayfs view of the binary",
        "running from a sealed in-memory copy of the binary",
    ]);
}
