//! `process`: args, env, cwd, user, umask, capabilities, rlimits,
//! noNewPrivileges, oomScoreAdj.

use integration::{berth_only, json, lines_of, s, wait_child, Bundle};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

/// The value of `field` in the container's /proc/self/status.
fn status_field(b: &mut Bundle, field: &str) -> String {
    let out = b.run_sh(&format!("grep '^{field}:' /proc/self/status"));
    out.split_whitespace().nth(1).unwrap_or_default().to_owned()
}

/// A capability set as /proc/PID/status prints it (16 hex digits).
fn cap_mask(bits: &[u32]) -> String {
    format!(
        "{:016x}",
        bits.iter().fold(0u64, |mask, bit| mask | 1 << bit)
    )
}

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_SETUID: u32 = 7;
const CAP_NET_BIND_SERVICE: u32 = 10;

#[test]
fn args_are_passed_verbatim() {
    let mut b = Bundle::new();
    b.set(
        "/process/args",
        json!(["sh", "-c", "printf '<%s>' \"$@\"", "sh", "a b", "", "*"]),
    );
    assert_eq!(b.run().assert_ok().stdout, "<a b><><*>");
}

/// A caller's /dev/null on stdin becomes the container's own: an fd of
/// the host's /dev would keep a mount of the host's in the container's
/// hands, and CRIU cannot dump it.
#[test]
fn stdin_from_the_hosts_dev_null_is_the_containers_own() {
    berth_only!("runc (1.1 and 1.3) reopens it only for a detached run");
    let mut b = Bundle::new();
    let out = b.run_sh(
        "m=$(awk '/^mnt_id/ {print $2}' /proc/self/fdinfo/0); \
         awk -v m=\"$m\" '$1 == m {n++} END {print n ? \"inside\" : \"outside\"}' /proc/self/mountinfo",
    );
    assert_eq!(out, "inside\n", "stdin's mount is not the container's");
}

#[test]
fn env_is_set() {
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("GREETING=hello there"))
    });
    assert_eq!(b.run_sh("echo \"$GREETING\""), "hello there\n");
}

#[test]
fn env_is_the_only_environment() {
    let mut b = Bundle::new();
    let out = b.run_sh(
        "env | grep -v -e ^PATH= -e ^TERM= -e ^BERTH_IT= -e ^HOME= -e ^PWD= -e ^SHLVL= || true",
    );
    assert_eq!(out, "", "nothing of the runtime's environment leaks in");
}

/// The process's own environment, as execve handed it over (a shell
/// would fold duplicates itself).
fn initial_env(b: &mut Bundle, env: &[&str]) -> Vec<String> {
    b.set("/process/env", json!(env));
    b.set("/process/args", json!(["cat", "/proc/self/environ"]));
    let out = b.run();
    out.assert_ok()
        .stdout
        .split('\0')
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn a_repeated_env_name_keeps_its_last_value() {
    berth_only!("runc 1.1.5 keeps the name where it first came; runc 1.2 and later, as berth, where it last came");
    let env = initial_env(
        &mut Bundle::new(),
        &["A=1", "B=1", "A=2", "HOME=/h", "PATH=/bin"],
    );
    assert_eq!(env, ["B=1", "A=2", "HOME=/h", "PATH=/bin"]);
}

#[test]
fn an_empty_home_is_filled_from_passwd() {
    let mut env = initial_env(&mut Bundle::new(), &["HOME=", "PATH=/bin"]);
    env.sort();
    assert_eq!(env, ["HOME=/root", "PATH=/bin"]);
}

#[test]
fn a_failed_exec_prints_one_line_naming_the_program() {
    // The interpreter is missing: the program is found, its execve fails
    // once create has returned, so only the container's stderr can say so.
    let mut b = Bundle::new();
    b.write_in_rootfs("/run.sh", "#!/mmnnttbb foo bar\nsh\n", 0o755);
    b.set("/process/args", json!(["/run.sh"]));
    b.run()
        .assert_one_error_line("exec /run.sh: no such file or directory");
}

#[test]
fn cap_dac_override_lets_a_user_run_a_program_only_its_owner_may() {
    // A root-owned script, 0744: the kernel lets a non-owner exec it only
    // with CAP_DAC_OVERRIDE, and so must the runtime's own check.
    let mut b = Bundle::new();
    b.write_in_rootfs("/bin/owner-only", "#!/bin/sh\necho hello\n", 0o744);
    b.set("/process/args", json!(["/bin/owner-only"]))
        .set("/process/user", json!({"uid": 1000, "gid": 100}));
    b.run().assert_failed();
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
            list.push(json!("CAP_DAC_OVERRIDE"));
        }
    });
    assert_eq!(b.run().assert_ok().stdout, "hello\n");
}

#[test]
fn cwd_is_set() {
    let mut b = Bundle::new();
    b.set("/process/cwd", json!("/etc"));
    assert_eq!(b.run_sh("pwd"), "/etc\n");
}

#[test]
fn stdio_pipes_belong_to_a_non_root_user() {
    // As containerd and Docker call the runtime: create with pipes as the
    // stdio the process inherits, then start. The user may then reopen
    // them (/dev/stdout); the group stays.
    let mut b = Bundle::new();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .sh(
            "stat -L -c '%u:%g %a %F' /proc/self/fd/0 /proc/self/fd/1; echo reopened > /dev/stdout",
        );
    let mut create = b.command();
    create
        .args(["create", "--bundle", s(&b.path), &b.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(b.dir.join("logs/create.err")).unwrap());
    let mut child = create.spawn().expect("spawn create");
    let lines = lines_of(child.stdout.take().unwrap());
    assert_eq!(wait_child(child, "create"), 0, "create failed");
    b.start().assert_ok();
    let out: Vec<String> = lines.iter().collect();
    assert_eq!(out, ["1000:0 600 fifo", "1000:0 600 fifo", "reopened"]);
    b.wait_status("stopped");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn a_cwd_only_root_may_enter_still_works_for_another_user() {
    // The runtime enters it before it switches to the user, as runc does;
    // the user then cannot read it.
    let mut b = Bundle::new();
    std::fs::set_permissions(b.rootfs().join("root"), PermissionsExt::from_mode(0o700)).unwrap();
    b.set("/process/cwd", json!("/root"))
        .set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let out = b.run_sh("pwd; id -u; ls . 2>/dev/null || echo unreadable");
    assert_eq!(out, "/root\n1000\nunreadable\n");
    b.assert_no_leftovers();
}

#[test]
fn user_sets_uid_and_gid() {
    let mut b = Bundle::new();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    assert_eq!(b.run_sh("id -u; id -g"), "1000\n1000\n");
}

#[test]
fn user_sets_additional_gids() {
    let mut b = Bundle::new();
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]}),
    );
    let mut groups: Vec<u32> = b
        .run_sh("id -G")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    assert_eq!(groups, [5, 1000, 65534]);
}

#[test]
fn user_sets_umask() {
    let mut b = Bundle::new();
    b.set("/process/user/umask", json!(0o027));
    assert_eq!(
        b.run_sh("umask; touch /dev/shm/f; stat -c %a /dev/shm/f"),
        "0027\n640\n"
    );
}

#[test]
fn root_gets_the_bounding_set() {
    // For root, execve makes permitted and effective the bounding set.
    let mut b = Bundle::new();
    let names = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.set(
        "/process/capabilities",
        json!({"bounding": names, "effective": names, "permitted": names}),
    );
    let mask = cap_mask(&[CAP_CHOWN, CAP_KILL]);
    assert_eq!(status_field(&mut b, "CapBnd"), mask);
    assert_eq!(status_field(&mut b, "CapEff"), mask);
}

#[test]
fn an_unknown_capability_is_ignored_with_a_warning() {
    // A profile written for a newer kernel (or with a typo) still runs.
    let mut b = Bundle::new();
    let names = json!(["CAP_KILL", "CAP_UNKNOWN", "UNKNOWN_CAP"]);
    b.set(
        "/process/capabilities",
        json!({"bounding": names, "permitted": names}),
    );
    b.set(
        "/process/args",
        json!(["grep", "^CapBnd:", "/proc/self/status"]),
    );
    let out = b.run();
    out.assert_ok();
    assert!(out.stdout.contains(&cap_mask(&[CAP_KILL])), "{out:?}");
    assert!(
        out.stderr.contains("CAP_UNKNOWN"),
        "the warning names it: {out:?}"
    );
}

#[test]
fn an_ambient_cap_that_is_not_inheritable_is_skipped_with_a_warning() {
    berth_only!("runc 1.1.5 skips it silently; runc 1.2 and later warn");
    let mut b = Bundle::new();
    b.set("/process/capabilities/inheritable", json!(["CAP_KILL"]))
        .set(
            "/process/capabilities/ambient",
            json!(["CAP_KILL", "CAP_CHOWN"]),
        )
        .sh("grep ^CapAmb /proc/self/status");
    let out = b.run();
    assert_eq!(
        out.assert_ok().stdout,
        format!("CapAmb:\t{}\n", cap_mask(&[CAP_KILL]))
    );
    out.assert_mentions("can't raise ambient capability CAP_CHOWN: ");
}

#[test]
fn non_root_gets_all_five_sets() {
    // For a non-root user only the ambient set survives execve into
    // permitted and effective, so each of the five sets is visible.
    let mut b = Bundle::new();
    let ambient = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let caps = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE"],
        "effective": ambient, "ambient": ambient,
    });
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .set("/process/capabilities", caps);
    let out = b.run_sh("grep ^Cap /proc/self/status");
    let expect = [
        (
            "CapInh",
            cap_mask(&[CAP_KILL, CAP_SETUID, CAP_NET_BIND_SERVICE]),
        ),
        ("CapPrm", cap_mask(&[CAP_KILL, CAP_NET_BIND_SERVICE])),
        ("CapEff", cap_mask(&[CAP_KILL, CAP_NET_BIND_SERVICE])),
        (
            "CapBnd",
            cap_mask(&[CAP_CHOWN, CAP_KILL, CAP_SETUID, CAP_NET_BIND_SERVICE]),
        ),
        ("CapAmb", cap_mask(&[CAP_KILL, CAP_NET_BIND_SERVICE])),
    ];
    let expect: String = expect.iter().map(|(k, v)| format!("{k}:\t{v}\n")).collect();
    assert_eq!(out, expect);
}

#[test]
fn rlimits_are_applied() {
    // Lowering is always allowed; this host cannot raise a hard limit.
    let mut b = Bundle::new();
    let rlimits = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
    ]);
    b.set("/process/rlimits", rlimits);
    assert_eq!(
        b.run_sh("ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc"),
        "512\n1024\n0\n8\n",
        "-c counts 512-byte blocks"
    );
}

#[test]
fn no_new_privileges_sets_the_flag() {
    let mut b = Bundle::new();
    b.set("/process/noNewPrivileges", json!(true));
    assert_eq!(status_field(&mut b, "NoNewPrivs"), "1");
}

#[test]
fn no_new_privileges_false_leaves_the_flag_clear() {
    let mut b = Bundle::new();
    b.set("/process/noNewPrivileges", json!(false));
    assert_eq!(status_field(&mut b, "NoNewPrivs"), "0");
}

#[test]
fn oom_score_adj_is_set() {
    let mut b = Bundle::new();
    b.set("/process/oomScoreAdj", json!(500));
    assert_eq!(b.run_sh("cat /proc/self/oom_score_adj"), "500\n");
}

#[test]
fn a_callers_cpu_affinity_does_not_bind_the_container() {
    berth_only!("runc 1.1.5 passes its own affinity on; runc 1.2 and later reset it");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap()
        .to_owned();
    let mut b = Bundle::new();
    b.sh("grep Cpus_allowed_list: /proc/self/status");
    let mut cmd = b.command_via_sh("exec taskset -c 0 \"$@\"");
    cmd.args(["run", "--bundle", s(&b.path), &b.id]);
    assert_eq!(b.output(&mut cmd).assert_ok().stdout, format!("{ours}\n"));
}

#[test]
fn the_linux32_personality_reaches_init_and_an_exec() {
    berth_only!("runc 1.1.5 does not know linux.personality");
    let mut b = Bundle::new();
    b.set(
        "/linux/personality",
        json!({"domain": "LINUX32", "flags": []}),
    )
    .sh("uname -m; exec sleep 600");
    let running = b.spawn_run();
    running.wait_for_line("i686");
    let exec = b.rt(&["exec", &b.id, "uname", "-m"]);
    assert_eq!(exec.assert_ok().stdout, "i686\n");
    b.kill(&["KILL"]).assert_ok();
    running.exit_code();
    b.assert_no_leftovers();
}

#[test]
fn personality_flags_are_refused_by_name() {
    berth_only!("runc 1.1.5 does not know linux.personality");
    let mut b = Bundle::new();
    b.set(
        "/linux/personality",
        json!({"domain": "LINUX", "flags": ["SHORT_INODE"]}),
    );
    b.create()
        .assert_failed()
        .assert_mentions("linux.personality.flags");
    b.assert_no_leftovers();
}
