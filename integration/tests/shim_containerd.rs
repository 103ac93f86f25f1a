//! containerd driving the shim through `ctr` (1.6 on the host, 1.7 and 2.1
//! on the trixie and sid stacks): the suite starts its own containerd (see
//! `integration::containerd`) and runs each scenario with
//! `io.containerd.berth.v2`, or with the stock `io.containerd.runc.v2` when
//! `BERTH_SHIM=runc`, to prove the scenarios honest.

use integration::{containerd_or_skip, poll, Events, Out, Task};
use std::collections::BTreeSet;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;

/// A process that runs until killed, with one child beside it.
const SLEEPER: [&str; 3] = ["sh", "-c", "sleep 1000 & exec sleep 1001"];

/// A started [`SLEEPER`].
fn sleeper<'a>(ctd: &'a integration::Containerd, flags: &[&str]) -> Task<'a> {
    let t = ctd.task();
    t.run_detached(flags, &SLEEPER);
    t.wait_status("RUNNING");
    // Running is reported once init runs; wait until sh has forked its
    // child and become `sleep 1001`, so that scenarios see both.
    let init = t.init_pid();
    let settled = || {
        let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap_or_default();
        let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"));
        cmdline == b"sleep\x001001\x00" && children.is_ok_and(|c| !c.trim().is_empty())
    };
    poll(&format!("{} never ran its sleepers", t.id), settled, |s| *s);
    t
}

/// Kills the task, waits for it to stop, deletes it and checks that
/// nothing is left.
#[track_caller]
fn kill_and_delete(t: &Task) {
    t.task("kill", &["-s", "KILL"], &[]).assert_ok();
    t.wait_status("STOPPED");
    t.delete();
    t.assert_no_leftovers();
}

#[test]
fn the_daemon_is_the_stacks_containerd() {
    let ctd = containerd_or_skip!();
    let want = integration::stack::engines().unwrap().containerd;
    let out = ctd.ctr(&["version"]);
    let server = out
        .assert_ok()
        .stdout
        .split("Server:")
        .nth(1)
        .unwrap_or_default();
    let version = server
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"));
    let version = version.map(str::trim).unwrap_or_default();
    assert!(
        version.starts_with(want),
        "expected containerd {want}x: {out:#?}"
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let out = t.run(&["sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!((out.code, out.stdout.as_str()), (3, "to-out\n"), "{out:#?}");
    assert!(out.stderr.contains("to-err\n"), "{out:#?}");
    t.assert_no_leftovers();
}

#[test]
fn stdin_reaches_the_container() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    // Two reads: the runc shim ends stdin only on CloseIO, which `ctr run`
    // does not send, so a scenario that waits for end-of-file hangs there.
    let script = r#"read a; read b; echo "$b $a""#;
    let out = t.run_with_input(&["sh", "-c", script], "one\ntwo\n");
    assert_eq!(out.assert_ok().stdout, "two one\n");
    t.assert_no_leftovers();
}

/// Runs `ctr args...` on a terminal of `size` (rows, cols) that script(1)
/// gives it (ctr wants one for -t).
fn ctr_on_a_terminal(ctd: &integration::Containerd, size: (u16, u16), args: &[String]) -> Out {
    let mut ctr = ctd.ctr_argv();
    ctr.extend_from_slice(args);
    integration::in_terminal(&ctr, size, &ctd.logs())
}

#[test]
fn a_terminal_is_the_process_stdio() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let args = t.run_args(
        &["--rm", "-t"],
        &["sh", "-c", "test -t 0 && test -t 1 && tty; exit 4"],
    );
    let out = ctr_on_a_terminal(ctd, (24, 80), &args);
    assert_eq!(out.code, 4, "{out:#?}");
    assert!(out.stdout.contains("/dev/pts/0\n"), "{out:#?}");
    t.assert_no_leftovers();
}

/// Prints the terminal's size once ctr has set it: ctr sends ResizePty
/// just after Start, so the process may run before it arrives, and
/// busybox's `stty size` prints nothing (and exits 0) while the size is
/// 0x0 (bounded, so that a size that never comes fails instead of hanging).
/// `waiting` tells a lost output from a size that never came; the last
/// pause keeps this scenario off the exit-versus-output race of
/// containerd's own shim (output lost once in CI): draining on an
/// immediate exit is what `a_terminal_is_the_process_stdio` checks.
const TERMINAL_SIZE: [&str; 3] = [
    "sh",
    "-c",
    "echo waiting; i=0; until [ -n \"$(stty size 2>/dev/null)\" ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done; stty size; sleep 0.2",
];

/// The size the scenarios give the outer terminal.
const ROWS_COLS: (u16, u16) = (33, 111);

#[test]
fn a_terminal_gets_the_clients_size() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let out = ctr_on_a_terminal(ctd, ROWS_COLS, &t.run_args(&["--rm", "-t"], &TERMINAL_SIZE));
    assert!(
        out.code == 0 && out.stdout.ends_with("33 111\n"),
        "{out:#?}"
    );
    t.assert_no_leftovers();
}

#[test]
fn an_exec_terminal_gets_the_clients_size() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    let mut args: Vec<String> = ["task", "exec", "-t", "--exec-id", "tty", &t.id]
        .map(str::to_owned)
        .to_vec();
    args.extend(TERMINAL_SIZE.map(str::to_owned));
    let out = ctr_on_a_terminal(ctd, ROWS_COLS, &args);
    assert!(
        out.code == 0 && out.stdout.ends_with("33 111\n"),
        "{out:#?}"
    );
    kill_and_delete(&t);
}

#[test]
fn in_the_hosts_pid_namespace_init_s_exit_ends_the_rest() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let script = "sleep 1000 >/dev/null 2>&1 & exit 0";
    let host_pid_ns = format!("pid:{}", ctd.daemon_pid_ns());
    t.run_detached(&["--with-ns", &host_pid_ns], &["sh", "-c", script]);
    t.wait_status("STOPPED");
    // The kernel ends nothing here, and the task is not deleted yet: the
    // shim must end what init left when init exits.
    let stock_2x = ctd.runtime == "io.containerd.runc.v2"
        && !integration::stack::engines()
            .unwrap()
            .containerd
            .starts_with("1.");
    if stock_2x {
        // containerd 2.1's runc shim leaves the sleeper running in
        // a third of the runs here (4 of 12): the reference cannot vouch
        // for this scenario there, and must not fail the suite.
        eprintln!(
            "reference check skipped: containerd 2's runc shim leaves init's children at random"
        );
        t.kill_processes();
    } else {
        t.assert_no_processes();
    }
    t.delete();
    t.assert_no_leftovers();
}

#[test]
fn a_binary_logger_gets_the_output() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let (logger, log) = (
        ctd.dir.join(format!("{}.logger", t.id)),
        ctd.dir.join(format!("{}.log", t.id)),
    );
    // containerd's logger protocol: output on fds 3 and 4, ready when fd 5
    // closes, the container named in the environment.
    let script = format!(
        "#!/bin/sh\nexec 5>&-\n{{ echo \"$CONTAINER_ID $*\"; cat <&3; }} > {}\n",
        log.display()
    );
    std::fs::write(&logger, script).unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?level=debug", logger.display());
    let args = t.run_args(&["--rm", "--log-uri", &uri], &["echo", "to-the-log"]);
    ctd.ctr(&strs(&args)).assert_ok();
    let want = format!("{} level debug\nto-the-log\n", t.id);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    poll("the logger's file", logged, |text| *text == want);
    t.assert_no_leftovers();
    let _ = std::fs::remove_file(&logger);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn exec_has_its_own_output_and_exit_code() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    let out = t.task(
        "exec",
        &["--exec-id", "e1"],
        &["sh", "-c", "echo in-exec; exit 5"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (5, "in-exec\n"),
        "{out:#?}"
    );
    assert_eq!(t.listed().unwrap().1, "RUNNING", "init still runs");
    kill_and_delete(&t);
}

#[test]
fn a_killed_task_exits_128_plus_the_signal() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    let args = t.run_args(&["--rm"], &SLEEPER);
    let child = ctd
        .ctr_command(&strs(&args))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    t.wait_status("RUNNING");
    t.task("kill", &["-s", "KILL"], &[]).assert_ok();
    assert_eq!(integration::wait_child(child, "ctr run"), 137);
    t.assert_no_leftovers();
}

#[test]
fn kill_after_exit_says_not_found() {
    let ctd = containerd_or_skip!();
    let t = ctd.task();
    t.run_detached(&[], &["true"]);
    t.wait_status("STOPPED");
    t.task("kill", &[], &[])
        .assert_failed()
        .assert_mentions("not found");
    t.delete();
    t.assert_no_leftovers();
}

#[test]
fn delete_refuses_a_running_task() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    t.task("delete", &[], &[])
        .assert_failed()
        .assert_mentions("running");
    assert_eq!(t.listed().unwrap().1, "RUNNING");
    kill_and_delete(&t);
}

#[test]
fn pause_and_resume_show_in_the_status() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    t.task("pause", &[], &[]).assert_ok();
    assert_eq!(t.listed().unwrap().1, "PAUSED");
    t.task("resume", &[], &[]).assert_ok();
    assert_eq!(t.listed().unwrap().1, "RUNNING");
    kill_and_delete(&t);
}

#[test]
fn ps_lists_init_and_its_child() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    let init = t.init_pid();
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let mut want: BTreeSet<i64> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    want.insert(init);
    let out = t.task("ps", &[], &[]);
    let listed: BTreeSet<i64> = out
        .assert_ok()
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .filter_map(|pid| ctd.host_pid(pid).map(i64::from))
        .collect();
    assert_eq!(listed, want, "{out:#?}");
    assert_eq!(listed.len(), 2, "init and one child");
    kill_and_delete(&t);
}

/// The value `ctr task metrics` prints for `metric`.
fn metric(out: &Out, metric: &str) -> String {
    let line = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(metric));
    let line = line.unwrap_or_else(|| panic!("no {metric} in {out:#?}"));
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn metrics_show_the_memory_limit_and_the_pids() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &["--memory-limit", "67108864"]);
    let out = t.task("metrics", &[], &[]);
    out.assert_ok();
    if integration::unified() {
        assert_eq!(metric(&out, "memory.usage_limit"), "67108864");
    } else {
        assert_eq!(metric(&out, "memory.limit_in_bytes"), "67108864");
    }
    assert_eq!(metric(&out, "pids.current"), "2");
    kill_and_delete(&t);
}

#[test]
fn events_come_create_start_exit_delete() {
    let ctd = containerd_or_skip!();
    let events = Events::watch(ctd);
    let t = ctd.task();
    t.run(&["true"]).assert_ok();
    let topics = events.task_topics(&t.id, "/tasks/delete");
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    t.assert_no_leftovers();
}

#[test]
fn events_of_exec_pause_and_resume_come_in_order() {
    let ctd = containerd_or_skip!();
    let events = Events::watch(ctd);
    let t = sleeper(ctd, &[]);
    t.task("exec", &["--exec-id", "e1"], &["true"]).assert_ok();
    t.task("pause", &[], &[]).assert_ok();
    t.task("resume", &[], &[]).assert_ok();
    kill_and_delete(&t);
    let topics = events.task_topics(&t.id, "/tasks/delete");
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert_eq!(topics, want);
}

/// The parent of `pid`.
fn parent_of(pid: i64) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit(") ").next().unwrap();
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn containers_of_one_group_share_a_shim() {
    let ctd = containerd_or_skip!();
    let group = format!("io.containerd.runc.v2.group={}", ctd.task().id);
    let first = sleeper(ctd, &["--annotation", &group]);
    let second = sleeper(ctd, &["--annotation", &group]);
    let shim = first.shim_pid().expect("the first container's shim") as i64;
    assert_eq!(second.shim_pid(), None, "no shim of its own");
    let parent = parent_of(second.init_pid());
    assert_eq!(parent, shim, "the first one's shim reaps it");
    // The first one's shim serves the rest of the group after it is gone,
    // and exits with the group's last container.
    first.task("kill", &["-s", "KILL"], &[]).assert_ok();
    first.wait_status("STOPPED");
    first.delete();
    assert_eq!(second.listed().unwrap().1, "RUNNING");
    kill_and_delete(&second);
    first.assert_no_leftovers();
}

#[test]
fn a_killed_shim_is_cleaned_up() {
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    let init = t.init_pid();
    let shim = t.shim_pid().expect("a shim serves the task");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    // containerd sees the shim go, runs `shim delete`, and drops the task.
    let gone = |l: &Option<(i64, String)>| l.as_ref().is_none_or(|(_, s)| s == "STOPPED");
    poll("the task outlived its shim", || t.listed(), gone);
    let _ = t.task("delete", &[], &[]);
    t.ctd.ctr(&["containers", "rm", &t.id]).assert_ok();
    t.assert_no_leftovers();
    assert!(!alive(init), "init {init} survived");
}

#[test]
fn a_shim_serving_a_task_containerd_gave_up_on_exits_at_its_clean_up() {
    // What containerd runs for a task it lost (killed mid-create, then
    // restarted with no record of it): `shim delete` in the bundle, while
    // the shim it had started still serves.
    let ctd = containerd_or_skip!();
    let t = sleeper(ctd, &[]);
    let init = t.init_pid();
    let shim = t.shim_pid().expect("a shim serves the task");
    let bundle = t.bundle();
    let mut clean_up = ctd.program_in(&bundle, &ctd.shim_binary());
    let address = integration::s(&ctd.address);
    clean_up.args(["-namespace", integration::NAMESPACE, "-address", address]);
    clean_up.args(["-publish-binary", "containerd", "-id", &t.id]);
    clean_up.args(["-bundle", integration::s(&bundle), "delete"]);
    integration::run_command(&mut clean_up, &ctd.dir).assert_ok();
    assert!(!alive(init), "init {init} survived the clean-up");
    if ctd.runtime == "io.containerd.runc.v2" {
        eprintln!("reference check skipped: the stock runc shim serves on with no task");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(shim, libc::SIGKILL) };
    }
    poll("the shim to exit", || alive(i64::from(shim)), |a| !a);
    let _ = t.task("delete", &[], &[]);
    let _ = t.ctd.ctr(&["containers", "rm", &t.id]);
    t.assert_no_leftovers();
}

/// Whether `pid` runs (a zombie waiting for a reaper does not).
fn alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(") ")
        .next()
        .and_then(|rest| rest.chars().next());
    state.is_some_and(|s| s != 'Z')
}

#[test]
fn an_oom_kill_sends_an_oom_event() {
    let ctd = containerd_or_skip!();
    let events = Events::watch(ctd);
    let t = sleeper(ctd, &["--memory-limit", "16777216"]);
    // tail buffers its endless "line" until the limit kills it.
    let out = t.task("exec", &["--exec-id", "hog"], &["tail", "/dev/zero"]);
    assert_eq!(out.code, 137, "{out:#?}");
    kill_and_delete(&t);
    let topics = events.task_topics(&t.id, "/tasks/delete");
    assert!(topics.contains(&"/tasks/oom".to_owned()), "{topics:?}");
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A process that exits 7 on SIGTERM (as pid 1 it ignores what it does
/// not handle).
const EXITS_7_ON_TERM: [&str; 3] = ["sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait"];

#[test]
fn tasks_outlive_a_containerd_restart() {
    // A restart disturbs every task of the daemon: this scenario has one
    // of its own.
    let ctd = containerd_or_skip!(integration::private_containerd());
    let tasks = [sleeper(&ctd, &[]), ctd.task()];
    tasks[1].run_detached(&[], &EXITS_7_ON_TERM);
    tasks[1].wait_status("RUNNING");
    let listed = |t: &Task| t.listed().expect("the task is listed").0;
    let pids: Vec<i64> = tasks.iter().map(listed).collect();
    ctd.restart();
    for (t, pid) in tasks.iter().zip(&pids) {
        assert_eq!(t.listed(), Some((*pid, "RUNNING".to_owned())), "{}", t.id);
        let out = t.task(
            "exec",
            &["--exec-id", "after"],
            &["sh", "-c", "echo here; exit 6"],
        );
        assert_eq!((out.code, out.stdout.as_str()), (6, "here\n"), "{out:#?}");
    }
    let events = Events::watch(&ctd);
    tasks[1].task("kill", &[], &[]).assert_ok();
    tasks[1].wait_status("STOPPED");
    tasks[1].delete();
    let seen = events.task_events(&tasks[1].id, "/tasks/delete");
    let exit = seen.iter().rev().find(|(topic, _)| topic == "/tasks/exit");
    let exit = exit.map(|(_, line)| line.as_str()).unwrap_or_default();
    assert!(exit.contains("\"exit_status\":7"), "{seen:#?}");
    kill_and_delete(&tasks[0]);
    tasks[1].assert_no_leftovers();
    assert_no_glued_lines(&ctd);
}

/// containerd copies a shim's log into its own byte for byte: a shim
/// record without its newline (a warning after the restart, while no
/// containerd read the log) glues containerd's next record onto it.
#[track_caller]
fn assert_no_glued_lines(ctd: &integration::Containerd) {
    let log = std::fs::read_to_string(ctd.dir.join("containerd.log")).expect("containerd's log");
    let glued: Vec<&str> = log
        .lines()
        .filter(|l| l.matches("time=\"").count() > 1)
        .collect();
    assert!(glued.is_empty(), "records glued together: {glued:#?}");
}

/// Runs `f` on every item, from a few threads at once.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let f = &f;
    std::thread::scope(|s| {
        for chunk in items.chunks(items.len().div_ceil(5)) {
            s.spawn(move || chunk.iter().for_each(f));
        }
    });
}

#[test]
fn fifty_containers_run_at_once() {
    let ctd = containerd_or_skip!();
    let tasks: Vec<Task> = (0..50).map(|_| ctd.task()).collect();
    in_parallel(&tasks, |t| t.run_detached(&[], &["sleep", "1000"]));
    let listed = ctd.ctr(&["task", "ls"]);
    for t in &tasks {
        let line = listed
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{} ", t.id)));
        assert!(
            line.is_some_and(|l| l.ends_with("RUNNING")),
            "{}: {listed:#?}",
            t.id
        );
    }
    // One exec at a time: 50 started at once is the load under test. Ten
    // concurrent `ctr task exec` on top failed one exec's check once in 13
    // suite runs with the stock runc shim (not reproduced since).
    for t in &tasks {
        let out = t.task("exec", &["--exec-id", "hi"], &["echo", &t.id]);
        assert_eq!(out.stdout, format!("{}\n", t.id), "{out:#?}");
    }
    // No group annotation: every container has a shim of its own.
    let shims: BTreeSet<libc::pid_t> = tasks.iter().filter_map(Task::shim_pid).collect();
    assert_eq!(shims.len(), tasks.len());
    in_parallel(&tasks, kill_and_delete);
}

/// containerd's serialized `Any` of `containerd.runc.v1.Options` with only
/// `shim_cgroup` (field 3) set, as it gives it to `start` on stdin.
fn options_with_shim_cgroup(cgroup: &str) -> Vec<u8> {
    let field = |number: u8, bytes: &[u8]| {
        let mut out = vec![number << 3 | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    };
    let options = field(3, cgroup.as_bytes());
    [field(1, b"containerd.runc.v1.Options"), field(2, &options)].concat()
}

#[test]
fn the_shim_cgroup_option_puts_the_shim_there() {
    let ctd = containerd_or_skip!();
    // ctr cannot set ShimCgroup: this runs the shim's `start` as
    // containerd does, with the options on stdin.
    let t = ctd.task();
    let cgroup = format!("/{}", t.id);
    let dir = match integration::unified() {
        true => format!("/sys/fs/cgroup{cgroup}"),
        false => format!("/sys/fs/cgroup/pids{cgroup}"),
    };
    std::fs::create_dir(&dir).unwrap();
    let bundle = ctd.dir.join(format!("bundle-{}", t.id));
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), "{}").unwrap();
    // containerd reads the shim's log from this FIFO; the runc shim exits
    // without it.
    let log = bundle.join("log");
    integration::run_command(std::process::Command::new("mkfifo").arg(&log), &ctd.logs())
        .assert_ok();
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&log)
        .unwrap();
    let options = ctd.logs().join(format!("{}.options", t.id));
    std::fs::write(&options, options_with_shim_cgroup(&cgroup)).unwrap();
    let mut start = ctd.program_in(&bundle, &ctd.shim_binary());
    start
        .arg("-namespace")
        .arg(integration::NAMESPACE)
        .arg("-address")
        .arg(&ctd.address)
        .args([
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            &t.id,
            "start",
        ])
        .env("TTRPC_ADDRESS", format!("{}.ttrpc", ctd.address.display()));
    let stdin = std::fs::File::open(&options).unwrap();
    let out = integration::run_with_stdin(&mut start, &ctd.logs(), stdin.into());
    let socket = out
        .assert_ok()
        .stdout
        .trim()
        .trim_start_matches("unix://")
        .to_owned();
    let shim = t.shim_pid().expect("a serving shim");
    let joined = integration::CgroupOf::pid(shim.into()).dir("pids");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    let _ = std::fs::remove_file(ctd.host_path(std::path::Path::new(&socket)));
    std::fs::remove_dir_all(&bundle).unwrap();
    // The cgroup is busy until the dead shim has been reaped.
    poll(
        &format!("remove {dir}"),
        || std::fs::remove_dir(&dir),
        Result::is_ok,
    )
    .expect("poll returns once removed");
    assert_eq!(joined, std::path::Path::new(&dir));
}

#[test]
fn a_user_namespaced_task_sees_its_image_owned_by_its_own_root() {
    // Kubernetes' hostUsers: false. containerd 2 gives the shim an overlay
    // with uidmap=/gidmap= options: its lower layers are idmapped, so the
    // image's root-owned files belong to the container's root. containerd
    // 1.6 idmaps nothing (1.7 does, as CI showed) (they show as the overflow id, with either shim),
    // and its client sends a runtime not named runc's its options as runc
    // v1's CreateOptions.
    let ctd = containerd_or_skip!();
    let idmapped = !integration::stack::engines()
        .unwrap()
        .containerd
        .starts_with("1.6");
    let owner = if idmapped { "0:0" } else { "65534:65534" };
    let t = ctd.task();
    let map = "0:100000:65536";
    let flags = ["--rm", "--uidmap", map, "--gidmap", map, "--remap-labels"];
    let script = "stat -c %u:%g /bin/busybox; tr -s ' ' < /proc/self/uid_map";
    let out = ctd.ctr(&strs(&t.run_args(&flags, &["sh", "-c", script])));
    let want = format!("{owner}\n 0 100000 65536\n");
    assert_eq!(out.assert_ok().stdout, want, "{out:#?}");
    t.assert_no_leftovers();
}
