//! `linux.seccomp`: what a filtered call returns, what kills, which
//! architectures are covered, the real clients' profiles, and when the
//! filter goes in.

use integration::{berth_only, fixtures_dir, json, s, Bundle, Out, Value};

/// A profile allowing everything but `rule`.
fn all_but(rule: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

/// busybox's mkdir goes through either call, depending on its libc.
fn mkdir_rule(action: &str) -> Value {
    json!({"names": ["mkdir", "mkdirat"], "action": action})
}

#[test]
fn errno_action_returns_its_errno() {
    let mut rule = mkdir_rule("SCMP_ACT_ERRNO");
    rule["errnoRet"] = json!(38);
    let mut b = Bundle::new();
    b.set("/linux/seccomp", all_but(rule))
        .sh("mkdir /tmp/x; echo status=$?");
    let out = b.run();
    out.assert_ok();
    assert!(out.stderr.contains("Function not implemented"), "{out:?}");
    assert_eq!(out.stdout, "status=1\n");
    b.assert_no_leftovers();
}

#[test]
fn default_errno_is_eperm() {
    let mut b = Bundle::new();
    b.set("/linux/seccomp", all_but(mkdir_rule("SCMP_ACT_ERRNO")))
        .sh("mkdir /tmp/x");
    b.run()
        .assert_failed()
        .assert_mentions("Operation not permitted");
}

#[test]
fn kill_action_kills_with_sigsys() {
    let mut b = Bundle::new();
    b.set(
        "/linux/seccomp",
        all_but(mkdir_rule("SCMP_ACT_KILL_PROCESS")),
    )
    .set("/process/args", json!(["mkdir", "/tmp/x"]));
    let out = b.run();
    assert_eq!(out.code, 128 + libc::SIGSYS, "{out:?}");
    b.assert_no_leftovers();
}

/// Puts tests/int80.c's program (built by build.rs) into the rootfs and
/// runs it: it makes one i386 call (getpid through `int 0x80`), then
/// prints "int80 ok" and exits 0.
fn with_int80(b: &mut Bundle) {
    std::fs::copy(env!("BERTH_INT80"), b.rootfs().join("bin/int80")).expect("copy int80");
    b.set("/process/args", json!(["/bin/int80"]));
}

#[test]
fn a_32_bit_call_is_killed_when_the_profile_names_only_x86_64() {
    let mut b = Bundle::new();
    with_int80(&mut b);
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}),
    );
    let out = b.run();
    assert_eq!(out.code, 128 + libc::SIGSYS, "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn a_32_bit_call_follows_the_rules_of_its_arch() {
    // getpid is allowed on x86_64 but refused for i386 callers.
    let mut b = Bundle::new();
    with_int80(&mut b);
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    let out = b.run();
    assert_eq!(out.code, 128 + libc::SIGSYS, "{out:?}");
    let mut allowed = Bundle::new();
    with_int80(&mut allowed);
    allowed.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}),
    );
    assert_eq!(allowed.run().assert_ok().stdout, "int80 ok\n");
}

/// The seccomp profile of a client's fixture config.
fn profile_of(fixture: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(fixture)).expect("read fixture");
    let config: Value = serde_json::from_str(&text).expect("fixture is JSON");
    config["linux"]["seccomp"].clone()
}

fn with_docker_profile(b: &mut Bundle) -> &mut Bundle {
    b.set("/linux/seccomp", profile_of("docker-20.10-default.json"))
}

#[test]
fn docker_profile_runs_ordinary_programs() {
    let mut b = Bundle::new();
    with_docker_profile(&mut b);
    let out = b.run_sh(
        "echo hi; ls / > /dev/null; ps > /dev/null; cat /proc/self/status > /dev/null; \
         sleep 0.1 & wait; id -u; date +%Y > /dev/null; echo done",
    );
    assert_eq!(out, "hi\n0\ndone\n");
    b.assert_no_leftovers();
}

#[test]
fn docker_profile_refuses_a_user_namespace_without_cap_sys_admin() {
    // Without the profile the same container may make one.
    let mut open = Bundle::new();
    assert_eq!(open.run_sh("unshare -U echo made"), "made\n");
    let mut b = Bundle::new();
    with_docker_profile(&mut b).sh("unshare -U echo made");
    b.run()
        .assert_failed()
        .assert_mentions("Operation not permitted");
    b.assert_no_leftovers();
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut b = Bundle::new();
    b.set("/linux/seccomp", all_but(mkdir_rule("SCMP_ACT_ERRNO")))
        .set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let out: Out = b.rt(&["exec", &b.id, "mkdir", "/tmp/x"]);
    b.delete(&["--force"]).assert_ok();
    out.assert_failed()
        .assert_mentions("Operation not permitted");
    b.assert_no_leftovers();
}

#[test]
fn with_no_new_privileges_the_filter_goes_in_after_the_identity_calls() {
    // Refusing the calls that switch user and capabilities does not stop
    // the container: with no-new-privileges the filter is loaded last.
    let deny = json!({"names": ["setgroups", "setresuid", "setresgid", "capset"],
                      "action": "SCMP_ACT_ERRNO"});
    let mut b = Bundle::new();
    b.set("/linux/seccomp", all_but(deny))
        .set("/process/noNewPrivileges", json!(true))
        .set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .sh("id -u");
    assert_eq!(b.run().assert_ok().stdout, "1000\n");
}

#[test]
fn notify_action_is_refused_clearly() {
    berth_only!("runc 1.1.5 hands the notify fd to a seccomp agent");
    let mut b = Bundle::new();
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": s(&b.dir.join("agent.sock")),
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    b.create()
        .assert_failed()
        .assert_mentions("SCMP_ACT_NOTIFY");
    b.assert_no_leftovers();
}

#[test]
fn bad_argument_index_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new();
    b.set(
        "/linux/seccomp",
        all_but(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                       "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]})),
    );
    let out = b.create();
    out.assert_failed();
    integration::berth_message(&out, "index", "runc names no field");
    b.assert_no_leftovers();
}
