//! Container steps that need no runtime and no root, with events captured
//! instead of sent.

use super::*;
use crate::events::Event;
use containerd_shim::protos::events::task::TaskExit;
use protobuf::Message;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

/// A container `c1` whose bundle is `dir`, with a running init (its
/// pid made up) and the events it publishes.
pub(crate) fn container(dir: &Path) -> (Arc<Container>, Receiver<Event>) {
    let (events, rx) = Events::capture();
    let shared = Arc::new(Shared {
        namespace: "test".into(),
        reaper: Arc::new(Reaper::default()),
        events,
    });
    let globals = GlobalOptions::new(&Options::default(), "test", dir.join("log.json"));
    let c = Arc::new(Container {
        id: "c1".into(),
        bundle: Bundle::new(dir),
        runtime: Runtime::new(globals, Arc::clone(&shared.reaper)),
        init: Arc::new(Process::new("", StdioPaths::default())),
        execs: Mutex::new(HashMap::new()),
        rootfs_mounted: false,
        io_ids: None,
        oom: OnceLock::new(),
        kill_all_on_exit: false,
        restore_from: None,
        shared,
    });
    start(&c.init, 4242);
    (c, rx)
}

fn start(p: &Process, pid: u32) {
    p.begin_start().unwrap();
    p.lock().pid = pid;
    p.advance(Step::Start, || {}).unwrap();
    p.end_start();
}

/// Adds a started exec whose pid is `pid`.
fn exec(c: &Container, exec_id: &str, pid: u32) -> Arc<Process> {
    let p = Arc::new(Process::new(exec_id, StdioPaths::default()));
    start(&p, pid);
    c.execs
        .lock()
        .unwrap()
        .insert(exec_id.into(), Arc::clone(&p));
    p
}

/// The exit events published so far: (process id, pid, status).
fn exits(rx: &Receiver<Event>) -> Vec<(String, u32, u32)> {
    rx.try_iter()
        .map(|(topic, any)| {
            assert_eq!(topic, topics::TASK_EXIT_EVENT_TOPIC);
            let e = TaskExit::parse_from_bytes(&any.value).unwrap();
            assert_eq!(e.container_id, "c1");
            (e.id, e.pid, e.exit_status)
        })
        .collect()
}

pub(crate) fn bundle_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-exits-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_exec_s_exit_goes_out_while_init_runs() {
    let dir = bundle_dir("exec");
    let (c, rx) = container(&dir);
    let e1 = exec(&c, "e1", 4343);
    c.exited(&e1, Exit::now(5));
    assert_eq!(exits(&rx), [("e1".to_owned(), 4343, 5)]);
    assert_eq!(e1.wait().status, 5);
    assert!(c.init.is_running());
    assert!(c.bundle.saved_exit().is_none(), "init's exit is not saved");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn init_s_exit_ends_its_execs_and_goes_out_after_theirs() {
    let dir = bundle_dir("init");
    let (c, rx) = container(&dir);
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let e1 = exec(&c, "e1", sleeper.id());
    c.exited(&c.init, Exit::now(0));
    assert_eq!(exits(&rx), [], "init's exit waits for e1's");
    assert!(c.init.lock().reported().is_none());
    let killed = sleeper.wait().unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "e1 is killed");

    c.exited(&e1, Exit::now(137));
    let want = [
        ("e1".to_owned(), sleeper.id(), 137),
        ("c1".to_owned(), 4242, 0),
    ];
    assert_eq!(exits(&rx), want);
    assert_eq!(c.init.wait().status, 0);
    assert!(!c.init.is_running());
    let saved = c.bundle.saved_exit().expect("init's exit, for shim delete");
    assert_eq!(saved.status, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exit_during_an_exec_s_start_waits_for_the_start() {
    let dir = bundle_dir("start");
    let (c, rx) = container(&dir);
    let e1 = Arc::new(Process::new("e1", StdioPaths::default()));
    c.execs.lock().unwrap().insert("e1".into(), Arc::clone(&e1));
    e1.begin_start().unwrap();
    e1.lock().pid = 4343;
    c.exited(&e1, Exit::now(1));
    assert_eq!(exits(&rx), [], "no exit before the exec-started event");
    e1.advance(Step::Start, || {}).unwrap();
    e1.end_start();
    c.report_exits();
    assert_eq!(exits(&rx), [("e1".to_owned(), 4343, 1)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exec_not_started_is_not_signalled() {
    let dir = bundle_dir("kill");
    let (c, _rx) = container(&dir);
    let req = ExecProcessRequest {
        exec_id: "e1".into(),
        ..Default::default()
    };
    c.add_exec(&req).unwrap();
    // Signal 0 checks and sends nothing: kill(0, 0) succeeds, where a
    // real signal would reach this test's whole process group.
    let err = c.kill("e1", 0, false).unwrap_err();
    assert!(matches!(err, ContainerError::NotCreated(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An OOM kill's event goes out before the exit it caused, which
/// containerd reads as the container's reason only in that order.
#[test]
fn an_oom_kill_is_published_before_its_exit() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = bundle_dir("oom");
    let (c, rx) = container(&dir);
    let kills = Arc::new(AtomicU64::new(0));
    let _ = c.oom.set(oom::counting(Arc::clone(&kills), c.oom_event()));
    kills.store(1, Ordering::SeqCst);
    c.exited(&c.init, Exit::now(128 + libc::SIGKILL as u32));
    let topics: Vec<&str> = rx.try_iter().map(|(topic, _)| topic).collect();
    assert_eq!(
        topics,
        [topics::TASK_OOM_EVENT_TOPIC, topics::TASK_EXIT_EVENT_TOPIC]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
