//! `linux.resources` and `linux.cgroupsPath`: each limit is checked where
//! the kernel keeps it (the cgroup file, on v1 or v2) and, where it can be
//! seen, by its effect; `update`, `pause`/`resume`, `events` and
//! `kill --all` act on the container's cgroup.

use integration::{berth_only, json, systemd_cgroup, unified, Bundle, CgroupOf, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates and starts `sleep 600` with `resources`; returns its cgroup.
fn sleeper(b: &mut Bundle, resources: Value) -> CgroupOf {
    b.set("/linux/resources", resources)
        .set("/process/args", json!(["sleep", "600"]));
    b.create().assert_ok();
    b.start().assert_ok();
    CgroupOf::pid(init_pid(b))
}

fn init_pid(b: &Bundle) -> i64 {
    b.state_json()["pid"].as_i64().expect("state has a pid")
}

/// Deletes the container and checks its cgroup is gone with it.
#[track_caller]
fn delete(b: &Bundle) {
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn memory_limit_is_set() {
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"memory": {"limit": 67108864}}));
    let limit = cg.read(("memory", "memory.limit_in_bytes"), "memory.max");
    delete(&b);
    assert_eq!(limit, "67108864");
}

#[test]
fn cpu_shares_and_quota_are_set() {
    let mut b = Bundle::new();
    let cpu = json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000}});
    let cg = sleeper(&mut b, cpu);
    let (weight, max) = if unified() {
        (
            cg.read(("", ""), "cpu.weight"),
            cg.read(("", ""), "cpu.max"),
        )
    } else {
        let quota = cg.read(("cpu", "cpu.cfs_quota_us"), "");
        let period = cg.read(("cpu", "cpu.cfs_period_us"), "");
        (
            cg.read(("cpu", "cpu.shares"), ""),
            format!("{quota} {period}"),
        )
    };
    delete(&b);
    // v2 has weights, not shares: runc's conversion gives 20 for 512.
    assert_eq!(weight, if unified() { "20" } else { "512" });
    assert_eq!(max, "50000 100000");
}

#[test]
fn cpu_idle_and_burst_are_set() {
    berth_only!("runc 1.1.5 writes neither on cgroup v1 (sid's runc 1.3.6 passes this)");
    let mut b = Bundle::new();
    let cpu = json!({"cpu": {"idle": 1, "quota": 50000, "period": 100000, "burst": 20000}});
    let cg = sleeper(&mut b, cpu);
    let idle = cg.read(("cpu", "cpu.idle"), "cpu.idle");
    let burst = cg.read(("cpu", "cpu.cfs_burst_us"), "cpu.max.burst");
    delete(&b);
    assert_eq!((idle.as_str(), burst.as_str()), ("1", "20000"));
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let mut b = Bundle::new();
    b.set("/linux/resources", json!({"pids": {"limit": 8}}));
    // The shell is one task and each background sleep one more: the
    // eighth sleep cannot be forked (busybox's shell may die of it).
    let out = b
        .sh("i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo looped")
        .run();
    b.assert_no_leftovers();
    assert!(out.stderr.contains("can't fork"), "{out:?}");
}

#[test]
fn a_pids_limit_of_0_forbids_forks_under_spec_1_3() {
    berth_only!("runc 1.1.5 reads pids.limit 0 as no limit; runc 1.4 writes 1, as berth does");
    let mut b = Bundle::new();
    b.set("/ociVersion", json!("1.3.0"));
    let cg = sleeper(&mut b, json!({"pids": {"limit": 0}}));
    let pids = cg.read(("pids", "pids.max"), "pids.max");
    let forked = b.rt(&["exec", &b.id, "sh", "-c", "/bin/true; echo forked"]);
    delete(&b);
    assert_eq!(pids, "1");
    assert!(
        forked.stderr.contains("can't fork") && !forked.stdout.contains("forked"),
        "{forked:?}"
    );
}

#[test]
fn exec_joins_a_container_at_its_pids_limit() {
    // A process moved into a cgroup is not refused by its limit, a fork
    // there is: the exec'd process must be forked outside and moved in.
    if unified() {
        berth_only!("runc 1.1.5 on cgroup v2 starts exec's runc init in the cgroup, whose limit refuses its threads");
    }
    let mut b = Bundle::new();
    b.set("/linux/resources", json!({"pids": {"limit": 2}}))
        .set("/process/args", json!(["sh", "-c", "sleep 600 & wait"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let cg = CgroupOf::pid(init_pid(&b));
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg.read(("pids", "pids.current"), "pids.current") != "2" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = b.rt(&["exec", &b.id, "echo", "in"]);
    delete(&b);
    assert_eq!(out.stdout, "in\n", "{out:?}");
}

#[test]
fn a_pids_limit_of_0_is_no_limit_before_spec_1_3() {
    // CRI-O before 1.29 and podman's compat API write it for "none".
    let mut b = Bundle::new();
    b.set("/ociVersion", json!("1.0.2-dev"))
        .set("/linux/resources", json!({"pids": {"limit": 0}}));
    let out = b.sh("/bin/true && echo forked").run();
    b.assert_no_leftovers();
    assert_eq!(out.stdout, "forked\n", "{out:?}");
}

#[test]
fn memory_limit_oom_kills_and_events_reports_it() {
    let mut b = Bundle::new();
    // `tail` keeps the line it is reading in memory; /dev/zero has no newline.
    b.set(
        "/linux/resources",
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    )
    // init outlives the OOM-killed tail, as a container does when a worker
    // is killed: under systemd an emptied scope, counters and all, is gone
    // at once.
    .sh("sleep 1; tail /dev/zero; exec sleep 600");
    b.create().assert_ok();
    let mut events = b
        .command()
        .args(["events", &b.id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn events");
    let lines = integration::lines_of(events.stdout.take().unwrap());
    b.start().assert_ok();
    let cg = CgroupOf::pid(init_pid(&b));
    let limit = cg.read(("memory", "memory.limit_in_bytes"), "memory.max");
    // runc's record, key for key and in that order: people grep for it.
    let oom_record = format!(r#"{{"type":"oom","id":"{}"}}"#, b.id);
    let oom = |l: &String| *l == oom_record;
    let start = Instant::now();
    let mut seen = Vec::new();
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(30).saturating_sub(start.elapsed())) {
        seen.push(l);
        if seen.last().is_some_and(oom) {
            break;
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    delete(&b);
    assert_eq!(limit, "16777216");
    assert!(
        seen.iter().any(oom),
        "no oom event in:\n{}",
        seen.join("\n")
    );
}

/// A bind of the host's /dev/loop-control (c 10:237, in no default
/// allow rule; opening it needs no capability).
fn with_loop_control(b: &mut Bundle) {
    b.bind(Path::new("/dev/loop-control"), "/dev/loop-control", &[]);
}

#[test]
fn device_outside_the_allow_list_cannot_be_opened() {
    let mut b = Bundle::new();
    with_loop_control(&mut b);
    let out = b.sh("head -c0 /dev/loop-control && echo opened").run();
    out.assert_failed();
    assert!(!out.stdout.contains("opened"), "{out:?}");
    assert!(out.stderr.contains("not permitted"), "{out:?}");
    b.assert_no_leftovers();
}

#[test]
fn device_allowed_by_a_rule_can_be_opened() {
    let mut b = Bundle::new();
    with_loop_control(&mut b);
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "r"}
    ]);
    b.set("/linux/resources/devices", rules);
    assert_eq!(
        b.run_sh("head -c0 /dev/loop-control && echo opened"),
        "opened\n"
    );
    b.assert_no_leftovers();
}

#[test]
fn update_changes_a_live_limit() {
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"pids": {"limit": 100}}));
    let file = b.dir.join("resources.json");
    std::fs::write(&file, json!({"pids": {"limit": 42}}).to_string()).unwrap();
    let by_file = b.rt(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    let after_file = cg.read(("pids", "pids.max"), "pids.max");
    let by_flag = b.rt(&["update", "--pids-limit", "7", &b.id]);
    let after_flag = cg.read(("pids", "pids.max"), "pids.max");
    delete(&b);
    by_file.assert_ok();
    by_flag.assert_ok();
    assert_eq!((after_file.as_str(), after_flag.as_str()), ("42", "7"));
}

#[test]
fn update_refuses_an_impossible_value() {
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"cpu": {"shares": 1024}}));
    let before = cg.read(("cpu", "cpu.shares"), "cpu.weight");
    let out = b.rt(&["update", "--cpu-quota", "500", "--cpu-period", "100", &b.id]);
    let after = cg.read(("cpu", "cpu.shares"), "cpu.weight");
    delete(&b);
    out.assert_failed();
    assert_eq!(before, after);
}

/// What a v1 limit file holds when there is no limit (the largest page
/// multiple), or v2's `max`.
fn unlimited() -> &'static str {
    if unified() {
        "max"
    } else {
        "9223372036854771712"
    }
}

#[test]
fn update_takes_minus_1_as_a_separate_argument() {
    let mut b = Bundle::new();
    let limits = json!({"memory": {"limit": 67108864, "swap": 134217728},
                        "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}});
    let cg = sleeper(&mut b, limits);
    let out = b.rt(&[
        "update",
        "--memory",
        "-1",
        "--memory-swap",
        "-1",
        "--cpu-quota",
        "-1",
        "--pids-limit",
        "-1",
        &b.id,
    ]);
    let memory = cg.read(("memory", "memory.limit_in_bytes"), "memory.max");
    let quota = cg.read(("cpu", "cpu.cfs_quota_us"), "cpu.max");
    let pids = cg.read(("pids", "pids.max"), "pids.max");
    delete(&b);
    out.assert_ok();
    assert_eq!(memory, unlimited());
    assert_eq!(quota, if unified() { "max 100000" } else { "-1" });
    assert_eq!(pids, "max");
}

#[test]
fn update_with_0_leaves_a_limit_alone() {
    // Clients send 0 for what they do not change.
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"pids": {"limit": 100}}));
    let out = b.rt(&["update", "--pids-limit", "0", &b.id]);
    let pids = cg.read(("pids", "pids.max"), "pids.max");
    delete(&b);
    out.assert_ok();
    assert_eq!(pids, "100");
}

#[test]
fn update_memory_minus_1_lifts_the_swap_limit_too() {
    // On v1 memory+swap may not be below memory: lifting memory alone
    // would be refused while the swap limit stands.
    let mut b = Bundle::new();
    let cg = sleeper(
        &mut b,
        json!({"memory": {"limit": 67108864, "swap": 134217728}}),
    );
    let out = b.rt(&["update", "--memory=-1", &b.id]);
    let memory = cg.read(("memory", "memory.limit_in_bytes"), "memory.max");
    let memsw = (!unified()).then(|| cg.read(("memory", "memory.memsw.limit_in_bytes"), ""));
    delete(&b);
    out.assert_ok();
    assert_eq!(memory, unlimited());
    if let Some(memsw) = memsw {
        assert_eq!(memsw, unlimited());
    }
}

#[test]
fn update_takes_runcs_cpu_share_spelling() {
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"cpu": {"shares": 1024}}));
    let out = b.rt(&["update", "--cpu-share", "512", &b.id]);
    let shares = cg.read(("cpu", "cpu.shares"), "cpu.weight");
    delete(&b);
    out.assert_ok();
    assert_eq!(shares, if unified() { "20" } else { "512" });
}

/// A cgroup the test makes itself, before the runtime sees it, in the
/// hierarchies of `controllers` (v1) or the one hierarchy (v2). The runtime
/// may add it to other hierarchies; dropping it thaws it and removes it
/// from all of them.
struct HostCgroup {
    name: String,
}

impl HostCgroup {
    fn new(name: &str, controllers: &[&str]) -> HostCgroup {
        let cg = HostCgroup {
            name: name.to_owned(),
        };
        for c in controllers {
            std::fs::create_dir(cg.dir(c)).expect("make the cgroup");
        }
        cg
    }

    /// Its directory in `controller`'s hierarchy (v1) or the one (v2).
    fn dir(&self, controller: &str) -> std::path::PathBuf {
        let mount = if unified() {
            String::new()
        } else {
            format!("/{controller}")
        };
        std::path::PathBuf::from(format!("/sys/fs/cgroup{mount}/{}", self.name))
    }

    fn write(&self, controller: &str, file: &str, value: &str) {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    fn freeze(&self) {
        match unified() {
            true => self.write("", "cgroup.freeze", "1"),
            false => self.write("freezer", "freezer.state", "FROZEN"),
        }
    }
}

impl Drop for HostCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir("freezer").join("freezer.state"), "THAWED");
        let _ = std::fs::write(self.dir("").join("cgroup.freeze"), "0");
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = std::fs::read_dir(root).into_iter().flatten().flatten();
        for dir in hierarchies.map(|h| h.path()).chain([root.to_path_buf()]) {
            let _ = std::fs::remove_dir(dir.join(&self.name));
        }
    }
}

/// A cgroup with a CPU quota of half a CPU, for the container's cgroup to
/// go below.
fn quota_parent(name: &str) -> HostCgroup {
    let cg = HostCgroup::new(name, &["cpu"]);
    match unified() {
        true => cg.write("", "cpu.max", "50000 100000"),
        false => cg.write("cpu", "cpu.cfs_quota_us", "50000"),
    }
    cg
}

#[test]
fn update_lowers_the_cpu_period_under_a_parent_quota() {
    if systemd_cgroup() {
        eprintln!("skipped: under systemd the parent is a slice systemd manages");
        return;
    }
    let mut b = Bundle::new();
    let parent_name = format!("{}-parent", b.id);
    let parent = quota_parent(&parent_name);
    b.set(
        "/linux/cgroupsPath",
        json!(format!("/{parent_name}/{}", b.id)),
    );
    let cg = sleeper(&mut b, json!({"cpu": {"quota": 50000, "period": 100000}}));
    // The new period alone (50000 with the old 50000 quota: a whole CPU)
    // is more than the parent allows; with the new quota it is not.
    let out = b.rt(&[
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        &b.id,
    ]);
    let max = match unified() {
        true => cg.read(("", ""), "cpu.max"),
        false => format!(
            "{} {}",
            cg.read(("cpu", "cpu.cfs_quota_us"), ""),
            cg.read(("cpu", "cpu.cfs_period_us"), "")
        ),
    };
    b.delete(&["--force"]).assert_ok();
    drop(parent);
    b.assert_no_leftovers();
    out.assert_ok();
    assert_eq!(max, "25000 50000");
}

/// The first of `files` the container's blkio (v1) or io (v2) cgroup has,
/// and what it holds.
fn first_present(cg: &CgroupOf, files: &[&str]) -> (String, String) {
    let dir = cg.dir("blkio");
    let file = files
        .iter()
        .find(|f| dir.join(f).exists())
        .unwrap_or_else(|| panic!("none of {files:?} in {}", dir.display()));
    let value = std::fs::read_to_string(dir.join(file)).unwrap();
    (file.to_string(), value.trim().to_owned())
}

/// Whether a new v1 blkio cgroup has `file`: BFQ's files exist only in a
/// kernel with BFQ, CFQ's only in one with the legacy block layer.
fn v1_blkio_has(file: &str) -> bool {
    let name = format!("berth-probe-{}-{file}", std::process::id());
    let probe = Path::new("/sys/fs/cgroup/blkio").join(name);
    std::fs::create_dir(&probe).expect("make a probe blkio cgroup");
    let has = probe.join(file).exists();
    std::fs::remove_dir(&probe).expect("remove the probe blkio cgroup");
    has
}

/// On a v1 kernel with neither CFQ nor BFQ (as here on some hosts) a
/// weight has nowhere to go: create fails naming the file, as runc's
/// does, and leaves nothing.
fn a_weight_without_bfq_is_refused(block_io: Value, file: &str) {
    let mut b = Bundle::new();
    b.set("/linux/resources", json!({"blockIO": block_io}));
    let out = b.create();
    out.assert_failed();
    let why = "runc 1.1.5 says permission denied for blkio.weight";
    integration::berth_message(&out, &format!("{file}: this kernel has no such file"), why);
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn blkio_weight_is_set_where_the_kernel_keeps_it() {
    // Without CFQ (gone from blk-mq kernels) v1 has blkio.bfq.weight and
    // no blkio.weight; v2 has io.bfq.weight when BFQ is built, else only
    // io.weight, on its own scale.
    if !unified() && !v1_blkio_has("blkio.weight") && !v1_blkio_has("blkio.bfq.weight") {
        return a_weight_without_bfq_is_refused(json!({"weight": 300}), "blkio.bfq.weight");
    }
    let mut b = Bundle::new();
    let cg = sleeper(&mut b, json!({"blockIO": {"weight": 300}}));
    let found = match unified() {
        true => first_present(&cg, &["io.bfq.weight", "io.weight"]),
        false => first_present(&cg, &["blkio.weight", "blkio.bfq.weight"]),
    };
    delete(&b);
    let want = match found.0.as_str() {
        "io.bfq.weight" => "default 300",
        "io.weight" => "default 2930",
        _ => "300",
    };
    assert_eq!(found.1, want, "{}", found.0);
}

/// An unused loop device switched to the BFQ scheduler (per-device
/// weights are for BFQ devices only), switched back on drop.
struct BfqLoop {
    name: String,
    was: String,
}

impl BfqLoop {
    fn new() -> BfqLoop {
        let unused = (0..8).map(|n| format!("loop{n}")).find(|name| {
            std::fs::read_to_string(format!("/sys/block/{name}/size"))
                .is_ok_and(|s| s.trim() == "0")
        });
        let name = unused.expect("an unused loop device");
        let file = format!("/sys/block/{name}/queue/scheduler");
        let all = std::fs::read_to_string(&file).expect("read the scheduler");
        let was = all
            .split_whitespace()
            .find_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
            .expect("a scheduler in use")
            .to_owned();
        std::fs::write(&file, "bfq").expect("switch to bfq");
        BfqLoop { name, was }
    }

    /// major:minor
    fn numbers(&self) -> (i64, i64) {
        let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", self.name)).unwrap();
        let (major, minor) = dev.trim().split_once(':').unwrap();
        (major.parse().unwrap(), minor.parse().unwrap())
    }
}

impl Drop for BfqLoop {
    fn drop(&mut self) {
        let file = format!("/sys/block/{}/queue/scheduler", self.name);
        let _ = std::fs::write(file, &self.was);
    }
}

#[test]
fn blkio_weight_device_is_set_for_a_bfq_device() {
    if !unified() && !v1_blkio_has("blkio.bfq.weight_device") {
        let weights = json!([{"major": 7, "minor": 0, "weight": 200}]);
        return a_weight_without_bfq_is_refused(
            json!({"weightDevice": weights}),
            "blkio.bfq.weight_device",
        );
    }
    let disk = BfqLoop::new();
    let (major, minor) = disk.numbers();
    let mut b = Bundle::new();
    let weights = json!([{"major": major, "minor": minor, "weight": 200}]);
    let cg = sleeper(&mut b, json!({"blockIO": {"weightDevice": weights}}));
    let found = match unified() {
        true => first_present(&cg, &["io.bfq.weight"]),
        false => first_present(&cg, &["blkio.weight_device", "blkio.bfq.weight_device"]),
    };
    delete(&b);
    drop(disk);
    let line = format!("{major}:{minor} 200");
    assert!(
        found.1.lines().any(|l| l == line),
        "{line} not in {found:?}"
    );
}

/// The CPU time a process has used, in clock ticks (utime + stime).
fn cpu_ticks(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn paused_processes_do_not_advance() {
    let mut b = Bundle::new();
    b.set("/process/args", json!(["sh", "-c", "while :; do :; done"]));
    b.create().assert_ok();
    b.start().assert_ok();
    let pid = init_pid(&b);
    b.rt(&["pause", &b.id]).assert_ok();
    let paused = b.state_json()["status"].clone();
    let frozen_at = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    let frozen_after = cpu_ticks(pid);
    b.rt(&["resume", &b.id]).assert_ok();
    let resumed = b.state_json()["status"].clone();
    let start = Instant::now();
    while cpu_ticks(pid) == frozen_after && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let runs_again = cpu_ticks(pid) > frozen_after;
    delete(&b);
    assert_eq!((paused, resumed), (json!("paused"), json!("running")));
    assert_eq!(frozen_at, frozen_after, "a paused process used CPU");
    assert!(runs_again, "the process never ran again after resume");
}

#[test]
fn pause_of_a_stopped_container_fails() {
    let b = Bundle::new();
    b.create().assert_ok();
    b.start().assert_ok();
    b.wait_status("stopped");
    b.rt(&["pause", &b.id])
        .assert_failed()
        .assert_mentions("not running");
    delete(&b);
}

#[test]
fn kill_all_reaches_every_process_without_a_pid_namespace() {
    // Without a pid namespace of its own only the cgroup knows which
    // processes belong to the container.
    let mut b = Bundle::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    b.sh("sleep 600 & sleep 600 & wait");
    b.create().assert_ok();
    b.start().assert_ok();
    let cg = CgroupOf::pid(init_pid(&b));
    let procs = cg.dir("pids").join("cgroup.procs");
    let count = || {
        std::fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let until = |done: &dyn Fn(usize) -> bool| {
        let start = Instant::now();
        while !done(count()) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        count()
    };
    until(&|n| n >= 3);
    b.rt(&["kill", "--all", &b.id, "KILL"]).assert_ok();
    // SIGKILLed processes leave the cgroup as they finish dying.
    let left = until(&|n| n == 0);
    delete(&b);
    assert_eq!(left, 0, "processes left in the cgroup");
}

#[test]
fn cgroups_path_is_honoured() {
    // The systemd driver takes slice:prefix:name and makes a scope.
    let mut b = Bundle::new();
    let (path, dir_ends) = match systemd_cgroup() {
        true => (
            format!("system.slice:berth-it:{}", b.id),
            format!("system.slice/berth-it-{}.scope", b.id),
        ),
        false => (format!("/berth-it/{}", b.id), format!("berth-it/{}", b.id)),
    };
    b.set("/linux/cgroupsPath", json!(path));
    let cg = sleeper(&mut b, json!({"pids": {"limit": 50}}));
    let dir = cg.dir("pids");
    let limit = cg.read(("pids", "pids.max"), "pids.max");
    delete(&b);
    assert!(dir.ends_with(&dir_ends), "{}", dir.display());
    assert_eq!(limit, "50");
    assert!(!dir.exists(), "delete left {}", dir.display());
}

#[test]
fn init_is_in_the_containers_cgroup_in_every_hierarchy() {
    // berth's first stage joins v1 hierarchies through `tasks` (no global
    // lock), cgroup2 through cgroup.procs: /proc/PID/cgroup shows each.
    let mut b = Bundle::new();
    let (path, want) = match systemd_cgroup() {
        true => (
            format!("system.slice:berth-it:{}", b.id),
            format!("/system.slice/berth-it-{}.scope", b.id),
        ),
        false => (format!("/berth-it/{}", b.id), format!("/berth-it/{}", b.id)),
    };
    b.set("/linux/cgroupsPath", json!(path));
    sleeper(&mut b, json!({}));
    let lines = std::fs::read_to_string(format!("/proc/{}/cgroup", init_pid(&b))).unwrap();
    delete(&b);
    let elsewhere: Vec<&str> = lines
        .lines()
        .filter(|l| l.splitn(3, ':').nth(2) != Some(want.as_str()))
        .collect();
    assert!(elsewhere.is_empty(), "not in {want}: {elsewhere:?}");
}

#[test]
fn a_frozen_cgroup_fails_create_at_once_and_leaves_nothing() {
    if systemd_cgroup() {
        eprintln!("skipped: under systemd the cgroup is a scope systemd makes");
        return;
    }
    // A process put in it would stop there for good, create with it.
    let mut b = Bundle::new();
    let name = format!("{}-frozen", b.id);
    let frozen = HostCgroup::new(&name, &["freezer"]);
    frozen.freeze();
    b.set("/linux/cgroupsPath", json!(format!("/{name}")));
    let out = b.create();
    drop(frozen);
    out.assert_failed().assert_mentions("frozen");
    b.assert_no_leftovers();
}

#[test]
fn a_cgroup_with_processes_in_it_is_refused() {
    berth_only!("runc 1.1.5 only warns; runc 1.2 and later refuse");
    if systemd_cgroup() {
        eprintln!("skipped: under systemd the cgroup is a scope systemd makes");
        return;
    }
    let mut b = Bundle::new();
    let name = format!("{}-busy", b.id);
    // runc counts the devices hierarchy's processes, berth the pids one's.
    let controllers: &[&str] = if unified() {
        &[""]
    } else {
        &["devices", "pids"]
    };
    let busy = HostCgroup::new(&name, controllers);
    let mut squatter = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    for c in controllers {
        busy.write(c, "cgroup.procs", &squatter.id().to_string());
    }
    b.set("/linux/cgroupsPath", json!(format!("/{name}")))
        .set("/process/args", json!(["sleep", "600"]));
    let out = b.create();
    let _ = squatter.kill();
    let _ = squatter.wait();
    b.delete(&["--force"]).assert_ok();
    drop(busy);
    b.assert_no_leftovers();
    out.assert_failed()
        .assert_mentions("container's cgroup is not empty: 1 process(es) found");
}

#[test]
fn bad_resource_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new();
    b.set(
        "/linux/resources",
        json!({"cpu": {"quota": 500, "period": 100}}),
    );
    b.create().assert_failed().assert_mentions("cpu");
    b.assert_no_leftovers();
}

#[test]
fn unified_resources_on_cgroup_v1_are_an_invalid_configuration() {
    let mut b = Bundle::new();
    let resources = json!({"unified": {"memory.min": "131072"}});
    if unified() {
        // On v2 the file is written as given.
        let min = sleeper(&mut b, resources).read(("", ""), "memory.min");
        delete(&b);
        assert_eq!(min, "131072");
        return;
    }
    b.set("/linux/resources", resources);
    b.create()
        .assert_failed()
        .assert_mentions("invalid configuration");
    b.assert_no_leftovers();
}

#[test]
fn events_stats_prints_usage() {
    let mut b = Bundle::new();
    sleeper(
        &mut b,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}),
    );
    let out = b.rt(&["events", "--stats", &b.id]);
    delete(&b);
    let e: Value = serde_json::from_str(out.assert_ok().stdout.trim()).expect("JSON");
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], b.id.as_str());
    assert!(e["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{e}");
    assert_eq!(e["data"]["pids"]["limit"], 50, "{e}");
    assert!(
        e["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{e}"
    );
}

#[test]
fn events_records_keep_runcs_key_order() {
    let mut b = Bundle::new();
    sleeper(&mut b, json!({"pids": {"limit": 50}}));
    let out = b.rt(&["events", "--stats", &b.id]);
    delete(&b);
    let line = out.assert_ok().stdout.trim();
    let head = format!(r#"{{"type":"stats","id":"{}","data":{{"#, b.id);
    assert!(line.starts_with(&head), "{line}");
}

/// `systemctl show UNIT -p PROPERTY...` as `Property=value` lines.
fn unit_properties(unit: &str, properties: &[&str]) -> String {
    let mut cmd = std::process::Command::new("systemctl");
    cmd.args(["show", unit]);
    for p in properties {
        cmd.args(["-p", p]);
    }
    let out = cmd.output().expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs systemd as PID 1 and --systemd-cgroup: hack/vm-test runs it in its guest"]
fn systemd_scope_carries_the_limits() {
    assert!(
        systemd_cgroup(),
        "run with BERTH_RUNTIME_FLAGS=--systemd-cgroup"
    );
    let mut b = Bundle::new();
    b.set(
        "/linux/cgroupsPath",
        json!(format!("system.slice:berth-it:{}", b.id)),
    );
    sleeper(
        &mut b,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 33}}),
    );
    let unit = format!("berth-it-{}.scope", b.id);
    let props = ["ActiveState", "MemoryMax", "TasksMax", "Delegate"];
    let running = unit_properties(&unit, &props);
    delete(&b);
    // systemd stops an emptied scope on its own time.
    integration::poll(
        "the scope stops after delete",
        || unit_properties(&unit, &["ActiveState"]),
        |state| state.trim() == "ActiveState=inactive",
    );
    for want in [
        "ActiveState=active",
        "MemoryMax=67108864",
        "TasksMax=33",
        "Delegate=yes",
    ] {
        assert!(
            running.lines().any(|l| l == want),
            "{want} not in:\n{running}"
        );
    }
}
