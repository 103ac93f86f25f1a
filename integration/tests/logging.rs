//! `--log FILE --log-format json`: one JSON object per line, and a failure
//! ends with an error line that names the cause.

use integration::{json, s, Bundle, Value};

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
