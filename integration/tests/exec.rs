//! `exec` (the flag form and `--process FILE`) and `ps`.

use integration::{
    berth_only, give_fd3, json, poll, s, unified, Bundle, CgroupOf, ConsoleSocket, Out, Value,
};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a scenario waits for something it polls for.
const PATIENCE: Duration = Duration::from_secs(30);

const CAP_SYS_ADMIN: u32 = 21;

/// A bundle whose init runs `sleep 1000`, with `edit` applied to its config.
fn sleeper(edit: impl FnOnce(&mut Bundle)) -> Bundle {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["sleep", "1000"]));
    edit(&mut b);
    b
}

/// A started [`sleeper`], with init's pid, once init runs `sleep`.
fn running_with(edit: impl FnOnce(&mut Bundle)) -> (Bundle, i64) {
    let b = sleeper(edit);
    b.create().assert_ok();
    b.start().assert_ok();
    let pid = init_pid(&b);
    wait_for_cmdline(pid, "sleep 1000");
    (b, pid)
}

fn running() -> (Bundle, i64) {
    running_with(|_| {})
}

fn init_pid(b: &Bundle) -> i64 {
    b.state_json()["pid"]
        .as_i64()
        .expect("state has init's pid")
}

/// `exec [flags...] ID command...`: runc takes flags before the id only.
fn exec(b: &Bundle, flags: &[&str], command: &[&str]) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&b.id);
    args.extend_from_slice(command);
    b.rt(&args)
}

/// Execs `sh -c script` with `flags`, asserts success, returns its stdout.
#[track_caller]
fn exec_sh(b: &Bundle, flags: &[&str], script: &str) -> String {
    exec(b, flags, &["sh", "-c", script])
        .assert_ok()
        .stdout
        .clone()
}

/// The value of `field` in the exec'd process's /proc/self/status.
#[track_caller]
fn status_field(b: &Bundle, flags: &[&str], field: &str) -> String {
    let line = exec_sh(b, flags, &format!("grep '^{field}:' /proc/self/status"));
    line.split_once(':')
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status: {line:?}"))
}

/// The pids `ps --format json` lists.
#[track_caller]
fn container_pids(b: &Bundle) -> Vec<i64> {
    let out = b.rt(&["ps", "--format", "json", &b.id]);
    let pids: Value = serde_json::from_str(&out.assert_ok().stdout).expect("ps prints JSON");
    pids.as_array()
        .unwrap_or_else(|| panic!("ps -f json prints an array: {out:?}"))
        .iter()
        .map(|p| p.as_i64().expect("pids are numbers"))
        .collect()
}

/// Force-deletes the container and checks that nothing of it is left.
#[track_caller]
fn remove(b: &Bundle) {
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

/// Asserts that a failed exec left no process in the container.
#[track_caller]
fn assert_only_init(b: &Bundle, init: i64) {
    assert_eq!(container_pids(b), [init], "the failed exec left a process");
}

/// Polls `done` until it holds; fails the test, saying `what`, after
/// [`PATIENCE`].
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pid` runs `command` (space-separated arguments): a runtime
/// may return from `start` or `exec -d` just before the process execs it.
#[track_caller]
fn wait_for_cmdline(pid: i64, command: &str) {
    let want: Vec<u8> = command
        .split(' ')
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let path = format!("/proc/{pid}/cmdline");
    wait_until(&format!("pid {pid} never ran {command}"), || {
        std::fs::read(&path).is_ok_and(|c| c == want)
    });
}

#[track_caller]
fn read_pid(pid_file: &Path) -> i64 {
    let text = std::fs::read_to_string(pid_file).expect("exec wrote the pid file");
    text.trim().parse().expect("the pid file holds a number")
}

fn cap_bit(mask: &str, bit: u32) -> bool {
    u64::from_str_radix(mask, 16).expect("a hex capability mask") & 1 << bit != 0
}

#[test]
fn exec_shares_every_namespace_of_the_container() {
    // The default spec has no cgroup namespace; without one the check
    // could not tell joining it from staying in the host's.
    let (b, init) = running_with(|b| {
        b.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            // runc's spec has one already on a cgroup v2 host.
            ns.retain(|n| n["type"] != "cgroup");
            ns.push(json!({"type": "cgroup"}))
        });
    });
    let kinds = ["mnt", "pid", "net", "ipc", "uts", "cgroup"];
    let inside = exec_sh(
        &b,
        &[],
        &format!(
            "for n in {}; do readlink /proc/self/ns/$n; done",
            kinds.join(" ")
        ),
    );
    let link = |path: String| std::fs::read_link(path).expect("read namespace link");
    for (kind, got) in kinds.iter().zip(inside.lines()) {
        let want = link(format!("/proc/{init}/ns/{kind}"));
        assert_ne!(
            want,
            link(format!("/proc/self/ns/{kind}")),
            "{kind} is the host's"
        );
        assert_eq!(Path::new(got), want, "{kind} namespace");
    }
    assert_eq!(inside.lines().count(), kinds.len(), "{inside:?}");
    remove(&b);
}

#[test]
fn exec_runs_in_the_containers_cgroup() {
    let (b, init) = running();
    // Both as the container sees them (with a cgroup namespace, as runc's
    // spec has on v2, paths are relative to its root), and init is pid 1.
    let both = exec_sh(&b, &[], "cat /proc/self/cgroup; echo; cat /proc/1/cgroup");
    let host_view = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    remove(&b);
    let (own, init_own) = both.split_once("\n\n").expect("two cgroup lists");
    assert_eq!(format!("{own}\n"), init_own);
    assert_ne!(
        host_view,
        std::fs::read_to_string("/proc/self/cgroup").unwrap()
    );
}

#[test]
fn exec_exits_with_the_process_exit_code_and_passes_output_through() {
    let (b, _) = running();
    let out = exec(
        &b,
        &[],
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "to-out\n", "to-err\n")
    );
    remove(&b);
}

#[test]
fn exec_passes_flag_like_arguments_to_the_command() {
    let (b, _) = running();
    let out = exec(
        &b,
        &[],
        &[
            "sh",
            "-c",
            "printf '<%s>' \"$@\"",
            "sh",
            "-e",
            "--cwd",
            "/x",
        ],
    );
    assert_eq!(out.assert_ok().stdout, "<-e><--cwd></x>");
    remove(&b);
}

#[test]
fn exec_cwd_sets_the_working_directory() {
    let (b, _) = running();
    assert_eq!(exec_sh(&b, &["--cwd", "/etc"], "pwd"), "/etc\n");
    remove(&b);
}

#[test]
fn exec_user_with_a_cwd_only_root_may_enter_works() {
    let (b, _) = running();
    std::fs::set_permissions(b.rootfs().join("root"), PermissionsExt::from_mode(0o700)).unwrap();
    let out = exec_sh(&b, &["--user", "1000:1000", "--cwd", "/root"], "pwd; id -u");
    assert_eq!(out, "/root\n1000\n");
    remove(&b);
}

#[test]
fn exec_cwd_that_does_not_exist_fails_and_creates_nothing() {
    // A writable rootfs, so that creating the directory would succeed.
    let (b, init) = running_with(|b| {
        b.set("/root/readonly", json!(false));
    });
    exec(&b, &["--cwd", "/nowhere"], &["true"])
        .assert_failed()
        .assert_mentions("/nowhere")
        .assert_mentions("no such file");
    assert!(!b.rootfs().join("nowhere").exists(), "exec created the cwd");
    assert_only_init(&b, init);
    remove(&b);
}

#[test]
fn exec_env_adds_to_the_containers_env() {
    let (b, _) = running_with(|b| {
        b.edit(|c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("FROM_CONFIG=kept"))
        });
    });
    let out = exec_sh(
        &b,
        &["-e", "GREETING=hello there", "-e", "TERM=dumb"],
        "echo \"$FROM_CONFIG/$GREETING/$TERM\"",
    );
    assert_eq!(out, "kept/hello there/dumb\n", "TERM=dumb overrides xterm");
    remove(&b);
}

#[test]
fn exec_user_sets_uid_and_gid() {
    let (b, _) = running();
    assert_eq!(
        exec_sh(&b, &["-u", "1000:1000"], "id -u; id -g"),
        "1000\n1000\n"
    );
    remove(&b);
}

#[test]
fn exec_user_without_a_gid_keeps_the_configs_gid() {
    let (b, _) = running_with(|b| {
        b.set("/process/user", json!({"uid": 0, "gid": 100}));
    });
    assert_eq!(
        exec_sh(&b, &["--user", "1000"], "id -u; id -g"),
        "1000\n100\n"
    );
    remove(&b);
}

#[test]
fn exec_additional_gids_add_to_the_configs() {
    let (b, _) = running_with(|b| {
        b.set(
            "/process/user",
            json!({"uid": 0, "gid": 0, "additionalGids": [5]}),
        );
    });
    let flags = ["--additional-gids", "7", "--additional-gids", "8"];
    // The kernel keeps supplementary groups sorted.
    assert_eq!(status_field(&b, &flags, "Groups"), "5 7 8");
    remove(&b);
}

#[test]
fn exec_cap_ignores_an_unknown_name_with_a_warning() {
    let (b, _) = running();
    let out = exec(
        &b,
        &["--cap", "CAP_NOPE", "--cap", "CAP_SYS_ADMIN"],
        &["grep", "^CapEff:", "/proc/self/status"],
    );
    out.assert_ok();
    let mask = out.stdout.split_whitespace().nth(1).unwrap_or_default();
    assert!(cap_bit(mask, CAP_SYS_ADMIN), "{out:?}");
    assert!(
        out.stderr.contains("CAP_NOPE"),
        "the warning names it: {out:?}"
    );
    remove(&b);
}

#[test]
fn exec_cap_adds_to_bounding_effective_and_permitted_only() {
    // Adding it to the inheritable set too was runc's CVE-2022-29162.
    let (b, _) = running();
    for field in ["CapBnd", "CapEff", "CapPrm"] {
        assert!(!cap_bit(&status_field(&b, &[], field), CAP_SYS_ADMIN));
        let with = status_field(&b, &["--cap", "CAP_SYS_ADMIN"], field);
        assert!(cap_bit(&with, CAP_SYS_ADMIN), "{field} {with}");
    }
    for field in ["CapInh", "CapAmb"] {
        assert_eq!(
            status_field(&b, &["--cap", "CAP_SYS_ADMIN"], field),
            status_field(&b, &[], field),
            "{field}"
        );
    }
    remove(&b);
}

#[test]
fn exec_no_new_privs_sets_no_new_privileges() {
    let (b, _) = running_with(|b| {
        b.set("/process/noNewPrivileges", json!(false));
    });
    assert_eq!(status_field(&b, &[], "NoNewPrivs"), "0");
    assert_eq!(status_field(&b, &["--no-new-privs"], "NoNewPrivs"), "1");
    remove(&b);
}

#[test]
fn exec_pid_file_names_a_pid_other_than_init() {
    let (b, init) = running();
    let pid_file = b.dir.join("exec.pid");
    exec(&b, &["--pid-file", s(&pid_file)], &["true"]).assert_ok();
    let written = read_pid(&pid_file);
    assert!(written > 0 && written != init, "pid {written}, init {init}");
    remove(&b);
}

#[test]
fn exec_detach_returns_while_the_process_runs() {
    let (b, init) = running();
    let pid_file = b.dir.join("exec.pid");
    exec(
        &b,
        &["--detach", "--pid-file", s(&pid_file)],
        &["sleep", "2000"],
    )
    .assert_ok();
    let pid = read_pid(&pid_file);
    wait_for_cmdline(pid, "sleep 2000");
    let pid_ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(pid_ns(pid), pid_ns(init));
    let pids = container_pids(&b);
    assert!(
        pids.len() == 2 && pids.contains(&init) && pids.contains(&pid),
        "ps lists init {init} and {pid}: {pids:?}"
    );
    remove(&b);
}

#[test]
fn exec_process_file_runs_the_described_process() {
    let (b, _) = running();
    let process = json!({
        "terminal": false,
        "args": ["sh", "-c", "pwd; id -u; id -g; echo \"$GREETING\""],
        "env": ["PATH=/bin:/usr/bin", b.marker(), "GREETING=from the file"],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000},
    });
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = b.rt(&["exec", "--process", s(&file), &b.id]);
    assert_eq!(out.assert_ok().stdout, "/tmp\n1000\n1000\nfrom the file\n");
    remove(&b);
}

#[test]
fn exec_process_file_without_user_runs_as_root() {
    let (b, _) = running();
    let process = json!({
        "args": ["sh", "-c", "id -u; id -g"],
        "env": ["PATH=/bin:/usr/bin", b.marker()],
        "cwd": "/",
    });
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = b.rt(&["exec", "--process", s(&file), &b.id]);
    assert_eq!(out.assert_ok().stdout, "0\n0\n");
    remove(&b);
}

#[test]
fn exec_process_file_may_be_an_inherited_pipe() {
    let (b, _) = running();
    let process = json!({
        "args": ["echo", "from the pipe"],
        "env": ["PATH=/bin:/usr/bin", b.marker()],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
    });
    let (read, mut write) = std::io::pipe().expect("pipe");
    std::io::Write::write_all(&mut write, process.to_string().as_bytes()).unwrap();
    drop(write);
    let read = File::from(std::os::fd::OwnedFd::from(read));
    let mut cmd = b.command();
    cmd.args(["exec", "--process", "/dev/fd/3", &b.id]);
    give_fd3(&mut cmd, &read);
    assert_eq!(b.output(&mut cmd).assert_ok().stdout, "from the pipe\n");
    remove(&b);
}

#[test]
fn exec_process_file_without_cwd_names_the_field() {
    let (b, init) = running();
    let file = b.dir.join("process.json");
    std::fs::write(&file, json!({"args": ["true"]}).to_string()).unwrap();
    b.rt(&["exec", "--process", s(&file), &b.id])
        .assert_failed()
        .assert_mentions("cwd");
    assert_only_init(&b, init);
    remove(&b);
}

#[test]
fn exec_tty_sends_the_terminal_to_the_console_socket() {
    // runc takes --console-socket only together with --detach.
    let (b, _) = running();
    let console = ConsoleSocket::listen(&b.dir.join("console.sock"));
    let script = "test -t 0 && test -t 1 && test -t 2 && tty";
    let flags = ["-t", "-d", "--console-socket", s(&console.path)];
    exec(&b, &flags, &["sh", "-c", script]).assert_ok();
    let output = console.output();
    assert!(output.starts_with("/dev/pts/"), "{output:?}");
    remove(&b);
}

#[test]
fn exec_tty_leaves_the_containers_dev_console_alone() {
    // /dev/console is init's; an exec'd terminal must not be bound there.
    let (b, _) = running();
    let console = ConsoleSocket::listen(&b.dir.join("console.sock"));
    let flags = ["-t", "-d", "--console-socket", s(&console.path)];
    exec(&b, &flags, &["tty"]).assert_ok();
    assert!(console.output().starts_with("/dev/pts/"));
    let probe = "test -e /dev/console && echo present || echo absent";
    assert_eq!(exec_sh(&b, &[], probe), "absent\n");
    remove(&b);
}

#[test]
fn a_failed_exec_of_the_program_prints_one_line_naming_it() {
    // The interpreter is missing: found, but its execve fails once the
    // process is ready, so only the process's stderr can say so.
    let (b, _) = running();
    b.write_in_rootfs("/run.sh", "#!/mmnnttbb foo bar\nsh\n", 0o755);
    exec(&b, &[], &["/run.sh"]).assert_one_error_line("exec /run.sh: no such file or directory");
    remove(&b);
}

#[test]
fn exec_into_a_created_container_runs_and_leaves_it_created() {
    let b = sleeper(|_| {});
    b.create().assert_ok();
    assert_eq!(exec_sh(&b, &[], "echo hi"), "hi\n");
    assert_eq!(b.state_json()["status"], "created");
    b.start().assert_ok();
    assert_eq!(b.state_json()["status"], "running");
    remove(&b);
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    // Tools grep for runc's words, and tell exec's own failure (255) from
    // the process's exit status.
    let out = exec(&b, &[], &["true"]);
    out.assert_mentions("cannot exec in a stopped container");
    assert_eq!(out.code, 255, "{out:?}");
    b.delete(&[]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn exec_into_a_paused_container_fails_without_ignore_paused() {
    let (b, init) = running();
    b.rt(&["pause", &b.id]).assert_ok();
    exec(&b, &[], &["true"])
        .assert_failed()
        .assert_mentions("cannot exec in a paused container");
    assert_eq!(b.state_json()["status"], "paused");
    assert_only_init(&b, init);
    b.rt(&["resume", &b.id]).assert_ok();
    remove(&b);
}

#[test]
fn exec_ignore_paused_runs_the_process_once_resumed() {
    let (b, init) = running();
    b.rt(&["pause", &b.id]).assert_ok();
    let out = std::thread::scope(|scope| {
        let pending = scope.spawn(|| exec(&b, &["--ignore-paused"], &["echo", "ran"]));
        // The exec is under way once its process is in the frozen cgroup.
        wait_until("the exec's process never joined the cgroup", || {
            assert!(!pending.is_finished(), "exec returned while paused");
            container_pids(&b).len() > 1
        });
        assert_eq!(b.state_json()["status"], "paused");
        b.rt(&["resume", &b.id]).assert_ok();
        pending.join().expect("exec thread")
    });
    assert_eq!(out.assert_ok().stdout, "ran\n");
    assert_only_init(&b, init);
    remove(&b);
}

#[test]
fn exec_of_a_missing_binary_names_it() {
    let (b, init) = running();
    for name in ["/no/such-binary", "no-such-binary"] {
        exec(&b, &[], &[name]).assert_failed().assert_mentions(name);
        assert_only_init(&b, init);
    }
    assert_eq!(b.state_json()["status"], "running");
    remove(&b);
}

#[test]
fn unknown_id_says_does_not_exist() {
    let b = Bundle::new();
    for args in [
        ["exec", "no-such-container", "true"],
        ["ps", "no-such-container", "-ef"],
    ] {
        b.rt(&args)
            .assert_failed()
            .assert_mentions("does not exist");
    }
}

#[test]
fn ps_shows_the_containers_processes_only() {
    let (b, init) = running();
    let out = b.rt(&["ps", &b.id]);
    let lines: Vec<&str> = out.assert_ok().stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    let col = header
        .iter()
        .position(|c| *c == "PID")
        .expect("a PID column");
    assert_eq!(lines.len(), 2, "the header and init only: {out:?}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[col], init.to_string());
    assert!(lines[1].ends_with("sleep 1000"), "{out:?}");
    remove(&b);
}

#[test]
fn ps_json_lists_the_pids() {
    let (b, init) = running();
    assert_eq!(container_pids(&b), [init]);
    remove(&b);
}

#[test]
fn ps_passes_extra_arguments_to_ps() {
    let (b, init) = running();
    let out = b.rt(&["ps", &b.id, "-o", "pid,args"]);
    let rows = out.assert_ok().stdout_words();
    assert_eq!(
        rows,
        ["PID COMMAND".to_owned(), format!("{init} sleep 1000")]
    );
    remove(&b);
}

/// `--cgroup` for a sub-cgroup `sub` made by the host: `pids:sub` on v1
/// (only the pids hierarchy has it), `sub` on v2.
fn sub_cgroup(init: i64) -> (String, std::path::PathBuf) {
    let dir = CgroupOf::pid(init).dir("pids").join("sub");
    std::fs::create_dir(&dir).expect("make the sub-cgroup");
    let flag = if unified() { "sub" } else { "pids:sub" };
    (flag.to_owned(), dir)
}

#[test]
fn exec_cgroup_runs_in_a_sub_cgroup() {
    let (b, init) = running();
    let (flag, dir) = sub_cgroup(init);
    let own = exec_sh(&b, &["--cgroup", &flag], "cat /proc/self/cgroup");
    remove(&b);
    let line = own
        .lines()
        .find(|l| {
            if unified() {
                l.starts_with("0::")
            } else {
                l.contains(":pids:")
            }
        })
        .unwrap_or_else(|| panic!("no pids cgroup in {own}"));
    assert!(line.ends_with("/sub"), "{own}");
    assert!(
        !dir.exists(),
        "delete left the sub-cgroup {}",
        dir.display()
    );
}

/// The cgroup path of `controller` in `/proc/self/cgroup` lines (v1).
fn v1_path<'a>(lines: &'a str, controller: &str) -> &'a str {
    lines
        .lines()
        .find_map(|l| {
            let (names, path) = l.split_once(':')?.1.split_once(':')?;
            names.split(',').any(|n| n == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup in {lines}"))
}

#[test]
fn exec_cgroup_may_be_given_once_per_controller() {
    if unified() {
        eprintln!("skipped: cgroup v2 has one hierarchy, so one --cgroup path");
        return;
    }
    let (b, init) = running();
    let cg = CgroupOf::pid(init);
    for (controller, sub) in [("pids", "psub"), ("memory", "msub")] {
        std::fs::create_dir(cg.dir(controller).join(sub)).expect("make the sub-cgroup");
    }
    let flags = ["--cgroup", "pids:psub", "--cgroup", "memory:msub"];
    let own = exec_sh(&b, &flags, "cat /proc/self/cgroup");
    let init_own = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    remove(&b);
    assert!(v1_path(&own, "pids").ends_with("/psub"), "{own}");
    assert!(v1_path(&own, "memory").ends_with("/msub"), "{own}");
    // Hierarchies no flag names stay the container's.
    assert_eq!(v1_path(&own, "freezer"), v1_path(&init_own, "freezer"));
}

#[test]
fn exec_cgroup_with_an_unknown_controller_names_it() {
    let (b, init) = running();
    let out = exec(&b, &["--cgroup", "nosuchctl:sub"], &["true"]);
    let left = container_pids(&b);
    remove(&b);
    out.assert_failed().assert_mentions("nosuchctl");
    assert_eq!(left, [init]);
}

#[test]
fn exec_cgroup_that_does_not_exist_fails() {
    let (b, init) = running();
    let flag = if unified() { "nosuch" } else { "pids:nosuch" };
    exec(&b, &["--cgroup", flag], &["true"])
        .assert_failed()
        .assert_mentions("no such file or directory");
    assert_eq!(container_pids(&b), [init]);
    remove(&b);
}

#[test]
fn exec_cgroup_outside_the_containers_is_refused() {
    let (b, init) = running();
    // A controller's own path is v1's; on v2 runc refuses the controller.
    let per_controller = (!unified()).then_some("pids:../sibling");
    for flag in ["..", "../sibling"].into_iter().chain(per_controller) {
        exec(&b, &["--cgroup", flag], &["true"])
            .assert_failed()
            // runc 1.1.5: "is not a sub cgroup path"; later: "bad sub cgroup path".
            .assert_mentions("sub cgroup path");
    }
    assert_eq!(container_pids(&b), [init]);
    remove(&b);
}

#[test]
fn exec_wait_fifo_holds_the_program_until_the_fifo_is_read() {
    berth_only!("--exec-wait-fifo came with runc 1.3");
    let (b, _) = running();
    let fifo = b.dir.join("go.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let program = ["sh", "-c", "echo ran > /dev/shm/marker"];
    exec(&b, &["-d", "--exec-wait-fifo", s(&fifo)], &program).assert_ok();
    exec(&b, &[], &["test", "-e", "/dev/shm/marker"]).assert_failed();
    // The go: opening for reading lets the process's open go through; it
    // closes at once, so the read ends.
    let mut go = Vec::new();
    std::io::Read::read_to_end(&mut File::open(&fifo).unwrap(), &mut go).unwrap();
    poll(
        "the program ran once the fifo was read",
        || exec(&b, &[], &["test", "-e", "/dev/shm/marker"]).code,
        |code| *code == 0,
    );
    remove(&b);
}

#[test]
fn exec_wait_fifo_must_name_a_fifo() {
    berth_only!("--exec-wait-fifo came with runc 1.3");
    let (b, init) = running();
    let plain = b.dir.join("plain");
    std::fs::write(&plain, "").unwrap();
    exec(&b, &["--exec-wait-fifo", s(&plain)], &["true"])
        .assert_failed()
        .assert_mentions("is not a fifo");
    let missing = b.dir.join("missing");
    exec(&b, &["--exec-wait-fifo", s(&missing)], &["true"])
        .assert_failed()
        .assert_mentions("missing");
    assert_eq!(container_pids(&b), [init]);
    remove(&b);
}
