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
fn start_container_hooks_run_under_the_filter() {
    // runc loads the filter before it runs them, with no-new-privileges
    // or without.
    for nnp in [true, false] {
        let mut b = Bundle::new();
        let shared = b.host_dir("shared");
        let hook = b.hook("mkdir /shared/by-hook 2>/dev/null; echo $? > /shared/status");
        b.set("/linux/seccomp", all_but(mkdir_rule("SCMP_ACT_ERRNO")))
            .set("/process/noNewPrivileges", json!(nnp))
            .set("/hooks/startContainer", json!([hook]))
            .bind(&shared, "/shared", &[]);
        b.run().assert_ok();
        let status = std::fs::read_to_string(shared.join("status")).expect("the hook ran");
        assert_eq!(status, "1\n", "noNewPrivileges {nnp}");
        assert!(!shared.join("by-hook").exists(), "noNewPrivileges {nnp}");
        b.assert_no_leftovers();
    }
}

/// The calls since Linux 5.3 (pidfd_send_signal, 424, on) that Docker
/// 20.10's profile names. Without them it is the profile of an older
/// Docker: like podman's older ones, the runtime spec's test profile and
/// many written by hand, an allowlist that refuses what it does not name.
const NEWER_CALLS: [&str; 16] = [
    "pidfd_send_signal",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "pidfd_open",
    "clone3",
    "close_range",
    "openat2",
    "faccessat2",
    "epoll_pwait2",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
];

/// Docker 20.10's profile without [`NEWER_CALLS`]: rseq (334) is the
/// newest call it names.
fn older_docker_profile() -> Value {
    let mut p = profile_of("docker-20.10-default.json");
    let rules = p["syscalls"].as_array_mut().expect("the profile has rules");
    for rule in rules.iter_mut() {
        let names = rule["names"].as_array_mut().expect("a rule has names");
        names.retain(|n| !NEWER_CALLS.contains(&n.as_str().expect("a name")));
    }
    rules.retain(|rule| rule["names"].as_array().is_some_and(|n| !n.is_empty()));
    p
}

#[test]
fn an_older_allowlist_without_no_new_privileges_runs_the_container() {
    // The filter goes in early here: the runtime's own calls after it
    // must be ones the profile knows.
    let mut b = Bundle::new();
    b.set("/linux/seccomp", older_docker_profile())
        .set("/process/noNewPrivileges", json!(false))
        .sh("echo ran; exit 3");
    let out = b.run();
    assert_eq!((out.code, out.stdout.as_str()), (3, "ran\n"), "{out:?}");
    b.assert_no_leftovers();
}

/// Puts tests/syscall.c's program (built by build.rs) into the rootfs:
/// `/bin/syscall NR` makes call NR and prints the errno it got (0 for
/// success).
fn with_syscall(b: &mut Bundle) -> &mut Bundle {
    std::fs::copy(env!("BERTH_SYSCALL"), b.rootfs().join("bin/syscall")).expect("copy syscall");
    b
}

#[test]
fn a_call_newer_than_the_profile_gets_enosys_so_libc_falls_back() {
    // close_range (436) is newer than every call the profile names, acct
    // (163) is not: it gets the default action, EPERM.
    let mut b = Bundle::new();
    with_syscall(&mut b)
        .set("/linux/seccomp", older_docker_profile())
        .set("/process/noNewPrivileges", json!(true));
    assert_eq!(b.run_sh("/bin/syscall 436; /bin/syscall 163"), "38\n1\n");
    b.assert_no_leftovers();
}

/// `struct seccomp_notif` and `struct seccomp_notif_resp` (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// _IOWR('!', 0 / 1, ...) for those two structs.
const NOTIF_RECV: u64 = 0xc050_2100;
const NOTIF_SEND: u64 = 0xc018_2101;

/// A seccomp agent at `sock`: takes `conns` connections, keeps the
/// container process state each is sent, and answers every notified call
/// on the fd that came with it with `errno` until the filtered processes
/// are gone. Gives each state and the syscall numbers it answered.
type Handled = Vec<(Value, Vec<i32>)>;
fn agent(sock: std::path::PathBuf, errno: i32, conns: usize) -> std::thread::JoinHandle<Handled> {
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let handlers: Vec<_> = (0..conns)
            .map(|_| {
                let (conn, _) = listener.accept().unwrap();
                std::thread::spawn(move || answer(conn, errno))
            })
            .collect();
        handlers.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn answer(conn: std::os::unix::net::UnixStream, errno: i32) -> (Value, Vec<i32>) {
    use std::os::fd::AsRawFd;
    let (state, fd) = recv_state(&conn);
    let mut answered = Vec::new();
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        if unsafe { libc::poll(&mut p, 1, 20_000) } <= 0 || p.revents & libc::POLLIN == 0 {
            break; // POLLHUP: no process has the filter any more.
        }
        let mut n = Notif::default();
        // SAFETY: the ioctl fills a struct seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n) } != 0 {
            continue; // the caller died meanwhile
        }
        answered.push(n.nr);
        let mut r = NotifResp {
            id: n.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: the ioctl reads a struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &mut r) };
    }
    (state, answered)
}

/// The JSON message and the fd it carries, from a connected socket.
fn recv_state(conn: &std::os::unix::net::UnixStream) -> (Value, std::os::fd::OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let (n, fd) = integration::receive_fd(conn, &mut buf, "the agent's socket");
    assert!(n > 0, "the runtime sent nothing to the agent");
    // Whole once it parses: runc 1.1.5 keeps the connection open.
    let mut data = buf[..n].to_vec();
    loop {
        match serde_json::from_slice::<Value>(&data) {
            Ok(v) => return (v, fd),
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                let m = std::io::Read::read(&mut &*conn, &mut more).unwrap_or(0);
                assert!(m > 0, "the container process state ended early");
                data.extend_from_slice(&more[..m]);
            }
            Err(e) => panic!("container process state is not JSON: {e}"),
        }
    }
}

/// A profile handing mkdir to the agent at `sock`.
fn notify_profile(sock: &std::path::Path) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": s(sock),
           "listenerMetadata": "agent-metadata",
           "syscalls": [mkdir_rule("SCMP_ACT_NOTIFY")]})
}

#[test]
fn notify_hands_the_calls_to_the_agent() {
    let mut b = Bundle::new();
    let sock = b.dir.join("agent.sock");
    let agent = agent(sock.clone(), libc::EXDEV, 1);
    b.set("/linux/seccomp", notify_profile(&sock))
        .sh("mkdir /tmp/x; test -d /tmp/x || echo refused");
    let out = b.run();
    let (state, answered) = agent.join().unwrap().remove(0);
    assert_eq!(out.assert_ok().stdout, "refused\n");
    assert!(out.stderr.contains("Invalid cross-device link"), "{out:?}");
    assert!(!answered.is_empty() && answered.iter().all(|nr| [83, 258].contains(nr)));
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "agent-metadata");
    assert_eq!(state["state"]["id"], b.id.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["pid"], state["state"]["pid"]);
    b.assert_no_leftovers();
}

#[test]
fn notify_with_no_new_privileges_reaches_the_agent_too() {
    let mut b = Bundle::new();
    let sock = b.dir.join("agent.sock");
    let agent = agent(sock.clone(), libc::EXDEV, 1);
    b.set("/linux/seccomp", notify_profile(&sock))
        .set("/process/noNewPrivileges", json!(true))
        .sh("mkdir /tmp/x 2>&1; grep NoNewPrivs /proc/self/status");
    let out = b.run();
    agent.join().unwrap();
    let text = &out.assert_ok().stdout;
    assert!(text.contains("Invalid cross-device link"), "{out:?}");
    assert!(text.contains("NoNewPrivs:\t1"), "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn an_exec_process_gets_its_own_agent_connection() {
    let mut b = Bundle::new();
    let sock = b.dir.join("agent.sock");
    let agent = agent(sock.clone(), libc::EXDEV, 2);
    b.set("/linux/seccomp", notify_profile(&sock))
        .set("/process/args", json!(["sleep", "1000"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let out = b.rt(&["exec", &b.id, "mkdir", "/tmp/y"]);
    out.assert_failed()
        .assert_mentions("Invalid cross-device link");
    b.kill(&["KILL"]).assert_ok();
    b.wait_status("stopped");
    b.delete(&[]).assert_ok();
    let handled = agent.join().unwrap();
    let statuses: Vec<_> = handled.iter().map(|(s, _)| &s["state"]["status"]).collect();
    assert!(statuses.contains(&&json!("running")), "{handled:?}");
    let exec = handled
        .iter()
        .find(|(s, _)| s["state"]["status"] == "running");
    let (state, answered) = exec.unwrap();
    assert_ne!(state["pid"], state["state"]["pid"], "exec's own pid");
    assert!(!answered.is_empty());
    b.assert_no_leftovers();
}

#[test]
fn an_unreachable_agent_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new();
    b.set("/linux/seccomp", notify_profile(&b.dir.join("nobody.sock")));
    b.create()
        .assert_failed()
        .assert_mentions("nobody.sock")
        .assert_mentions("failed to connect with seccomp agent");
    b.assert_no_leftovers();
}

#[test]
fn notify_on_write_is_refused() {
    let mut b = Bundle::new();
    let mut profile = notify_profile(&b.dir.join("agent.sock"));
    profile["syscalls"][0]["names"] = json!(["write"]);
    b.set("/linux/seccomp", profile);
    b.create()
        .assert_failed()
        .assert_mentions("SCMP_ACT_NOTIFY cannot be used for the write syscall");
    b.assert_no_leftovers();
}

#[test]
fn notify_as_the_default_action_is_refused() {
    let mut b = Bundle::new();
    let mut profile = notify_profile(&b.dir.join("agent.sock"));
    profile["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    b.set("/linux/seccomp", profile);
    b.create().assert_failed().assert_mentions("default action");
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

#[test]
fn filter_flags_are_picked_as_runc_picks_them() {
    berth_only!("the debug record is berth's; runc 1.2 and later pick the flags so too");
    // None given: SPEC_ALLOW (4); TSYNC counts for nothing; LOG is 2.
    for (flags, want) in [
        (None, 4),
        (Some(json!([])), 0),
        (
            Some(json!([
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG"
            ])),
            2,
        ),
    ] {
        let mut b = Bundle::new();
        let mut profile = all_but(mkdir_rule("SCMP_ACT_ERRNO"));
        if let Some(f) = flags {
            profile["flags"] = f;
        }
        b.set("/linux/seccomp", profile).sh("true");
        let out = b.rt(&["--debug", "run", "--bundle", s(&b.path), &b.id]);
        out.assert_ok()
            .assert_mentions(&format!("loaded with flags {want:#x}\""));
    }
}
