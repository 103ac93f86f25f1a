//! `linux.memoryPolicy` (runtime-spec 1.3), seen in the container's
//! /proc/self/numa_maps. Neither runc 1.1.5 nor sid's runc 1.3.6 knows it
//! (both run the container with the default policy).

use integration::{berth_only, json, Bundle, Value};

const WHY: &str = "runc 1.1.5 does not know linux.memoryPolicy";

/// The policy of the first mapping /proc/self/numa_maps lists.
const FIRST_POLICY: &str = "head -1 /proc/self/numa_maps | cut -d' ' -f2";

#[test]
fn a_policy_reaches_init_and_an_exec() {
    berth_only!(WHY);
    let mut b = Bundle::new();
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
    );
    assert_eq!(b.run_sh(FIRST_POLICY), "interleave=static:0\n");
    b.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "0"}),
    );
    b.sh("echo up; exec sleep 600");
    let running = b.spawn_run();
    running.wait_for_line("up");
    let exec = b.rt(&["exec", &b.id, "sh", "-c", FIRST_POLICY]);
    assert_eq!(exec.assert_ok().stdout, "bind:0\n");
    b.kill(&["KILL"]).assert_ok();
    running.exit_code();
    b.assert_no_leftovers();
}

#[test]
fn bad_policies_are_refused_by_field_and_leave_nothing() {
    berth_only!(WHY);
    for (policy, mentions) in [
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
            "linux.memoryPolicy.nodes",
        ),
        (json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "1-"}),
            "linux.memoryPolicy.nodes",
        ),
        (json!({"mode": "MPOL_NOPE"}), "linux.memoryPolicy.mode"),
        // No machine has node 1023: the kernel refuses it.
        (
            json!({"mode": "MPOL_BIND", "nodes": "1023"}),
            "linux.memoryPolicy (MPOL_BIND",
        ),
    ] {
        let mut b = Bundle::new();
        b.set("/linux/memoryPolicy", policy);
        b.create().assert_failed().assert_mentions(mentions);
        b.assert_no_leftovers();
    }
}

#[test]
fn every_mode_features_lists_runs() {
    berth_only!(WHY);
    let b = Bundle::new();
    let out = b.rt(&["features"]);
    let doc: Value = serde_json::from_str(&out.assert_ok().stdout).expect("features prints JSON");
    let modes = doc["linux"]["memoryPolicy"]["modes"].as_array().cloned();
    let modes = modes.expect("linux.memoryPolicy.modes");
    assert_eq!(modes.len(), 7, "{doc}");
    for mode in modes {
        let nodes = match mode.as_str() {
            Some("MPOL_DEFAULT" | "MPOL_LOCAL") => json!(null),
            _ => json!("0"),
        };
        let mut b = Bundle::new();
        b.set("/linux/memoryPolicy", json!({"mode": mode, "nodes": nodes}));
        assert_eq!(b.run().assert_ok().code, 0, "{mode}");
    }
}
