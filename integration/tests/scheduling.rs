//! `process.scheduler`, `process.ioPriority` and `process.execCPUAffinity`
//! (runtime-spec 1.1 and 1.2.1), seen from inside the container. runc
//! 1.1.5 knows none of them; runc 1.3.6 (the sid stack's) gives the same
//! results and refuses the same configs.

use integration::{berth_only, json, s, unified, Bundle, Running, Value};

const WHY: &str = "runc 1.1.5 does not know the field";

/// A script that prints its own scheduling policy and priority (the
/// kernel's numbers: policy 3 is SCHED_BATCH, prio 120 + nice) from
/// /proc/PID/sched, `self` for the reading process or `$$` for the shell.
fn sched_of(pid: &str) -> String {
    format!("grep -E '^(policy|prio) ' /proc/{pid}/sched | tr -s ' ' | cut -d' ' -f3")
}

/// A container of `b` that runs until killed, once its init said `up`.
fn running(b: &mut Bundle) -> Running {
    b.sh("echo up; exec sleep 600");
    let running = b.spawn_run();
    running.wait_for_line("up");
    running
}

/// Kills the container, waits for it, and checks nothing is left.
fn stop(b: &Bundle, running: Running) {
    b.kill(&["KILL"]).assert_ok();
    running.exit_code();
    b.assert_no_leftovers();
}

#[test]
fn a_batch_policy_and_nice_reach_init_and_an_exec() {
    berth_only!(WHY);
    let mut b = Bundle::new();
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 5}),
    );
    assert_eq!(b.run_sh(&sched_of("self")), "3\n125\n");
    let running = running(&mut b);
    let exec = b.rt(&["exec", &b.id, "sh", "-c", &sched_of("self")]);
    assert_eq!(exec.assert_ok().stdout, "3\n125\n");
    stop(&b, running);
}

/// A realtime policy for `b`'s process. Under cgroup v1's RT group
/// scheduling a cgroup gets no RT time unless given some, nor more than its
/// parent has: the container's cgroup goes under the root and gets a share.
fn realtime(b: &mut Bundle, policy: &str) {
    b.set(
        "/process/scheduler",
        json!({"policy": policy, "priority": 10}),
    );
    if !unified() && std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        let path = format!("/berth-rt-{}", b.id);
        b.set("/linux/cgroupsPath", json!(path)).set(
            "/linux/resources",
            json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}),
        );
    }
}

#[test]
fn fifo_and_round_robin_policies_reach_init_with_their_priority() {
    berth_only!(WHY);
    // Policy 1 is SCHED_FIFO, 2 SCHED_RR; prio is 99 - priority.
    for (policy, number) in [("SCHED_FIFO", 1), ("SCHED_RR", 2)] {
        let mut b = Bundle::new();
        realtime(&mut b, policy);
        assert_eq!(b.run_sh(&sched_of("self")), format!("{number}\n89\n"));
        b.assert_no_leftovers();
    }
}

#[test]
fn the_specs_spelling_of_reset_on_fork_resets_a_childs_nice() {
    berth_only!(WHY);
    let mut b = Bundle::new();
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
    );
    // The shell keeps nice -5 (prio 115); grep, its child, starts at 0.
    let script = format!("{}; {}", sched_of("$$"), sched_of("self"));
    assert_eq!(b.run_sh(&script), "0\n115\n0\n120\n");
}

#[test]
fn an_io_priority_reaches_init_and_an_exec() {
    berth_only!(WHY);
    let mut b = Bundle::new();
    b.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_BE", "priority": 6}),
    );
    assert_eq!(b.run_sh("ionice -p $$"), "best-effort: prio 6\n");
    let running = running(&mut b);
    let exec = b.rt(&["exec", &b.id, "sh", "-c", "ionice -p $$"]);
    assert_eq!(exec.assert_ok().stdout, "best-effort: prio 6\n");
    stop(&b, running);
}

#[test]
fn bad_scheduling_values_are_refused_by_field() {
    berth_only!(WHY);
    let cases = [
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "nice": 30}),
            "process.scheduler.nice",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_BATCH", "priority": 10}),
            "process.scheduler.priority",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "runtime": 1000}),
            "process.scheduler",
        ),
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
            "process.ioPriority.priority",
        ),
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_XX", "priority": 1}),
            "process.ioPriority.class",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut b = Bundle::new();
        b.set(pointer, value);
        b.create().assert_failed().assert_mentions(field);
        b.assert_no_leftovers();
    }
}

#[test]
fn a_policy_the_kernel_lacks_fails_create_and_leaves_nothing() {
    berth_only!(WHY);
    let mut b = Bundle::new();
    b.set("/process/scheduler", json!({"policy": "SCHED_ISO"}));
    b.create()
        .assert_failed()
        .assert_mentions("process.scheduler (SCHED_ISO)");
    b.assert_no_leftovers();
}

/// `exec --process` of `process` (the container's own with `change`).
fn exec_with(b: &Bundle, change: impl FnOnce(&mut Value)) -> integration::Out {
    let mut process = b.config["process"].clone();
    process["args"] = json!(["grep", "Cpus_allowed_list:", "/proc/self/status"]);
    change(&mut process);
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    b.rt(&["exec", "--process", s(&file), &b.id])
}

/// The CPUs this process may run on (the container's init gets them too).
fn our_cpus() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:"));
    line.unwrap().split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn exec_cpu_affinity_pins_an_exec_and_leaves_init_alone() {
    berth_only!(WHY);
    let ours = our_cpus();
    let last = ours.rsplit(['-', ',']).next().unwrap().to_owned();
    let mut b = Bundle::new();
    b.set(
        "/process/execCPUAffinity",
        json!({"initial": "0", "final": last}),
    );
    let running = running(&mut b);
    let init = b.rt(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "grep Cpus_allowed_list: /proc/1/status",
    ]);
    assert_eq!(
        init.assert_ok().stdout,
        format!("Cpus_allowed_list:\t{ours}\n")
    );
    let pinned = exec_with(&b, |_| {});
    assert_eq!(
        pinned.assert_ok().stdout,
        format!("Cpus_allowed_list:\t{last}\n")
    );
    let bad = exec_with(&b, |p| p["execCPUAffinity"] = json!({"final": "4095"}));
    bad.assert_failed()
        .assert_mentions("process.execCPUAffinity.final");
    let malformed = exec_with(&b, |p| p["execCPUAffinity"] = json!({"final": "1-"}));
    malformed.assert_failed().assert_mentions("execCPUAffinity");
    stop(&b, running);
}
