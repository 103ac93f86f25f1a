//! Rootless containers (issue 18, its first part): the runtime run by a
//! user who is not root (nobody), with a bundle `spec --rootless` wrote:
//! a user namespace mapping that user to root, no network namespace, and
//! on this cgroup v1 host no cgroup, since none is delegated to the user.

use integration::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOBODY: u32 = 65534;

/// A bundle from `spec --rootless` run as nobody, whose process runs
/// `script`; the test directory is nobody's, and so is `$XDG_RUNTIME_DIR`
/// (`dir/xdg`), under which the runtime keeps its state by default, as
/// runc does: `state_root` names that default.
fn rootless(script: &str) -> Bundle {
    let mut b = Bundle::new();
    let xdg = b.dir.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(&b.dir)
        .status();
    assert!(chown.unwrap().success(), "chown the test directory");
    std::fs::remove_file(b.path.join("config.json")).unwrap();
    let mut spec = Command::new(runtime());
    spec.args(["spec", "--rootless", "--bundle", s(&b.path)]);
    b.output(as_nobody(&mut spec, &xdg)).assert_ok();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(b.path.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", script]);
    let marker = b.marker();
    config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(marker));
    b.edit(|c| *c = config);
    let name = runtime().file_name().unwrap();
    b.state_root = xdg.join(name);
    b
}

/// `cmd` as nobody (no supplementary groups), with `$XDG_RUNTIME_DIR`.
fn as_nobody<'a>(cmd: &'a mut Command, xdg: &Path) -> &'a mut Command {
    cmd.uid(NOBODY).gid(NOBODY).env("XDG_RUNTIME_DIR", xdg)
}

/// The runtime as nobody, with its default `--root`.
fn rt_as_nobody(b: &Bundle, args: &[&str]) -> Out {
    let mut cmd = Command::new(runtime());
    cmd.args(runtime_flags()).args(args).current_dir(&b.dir);
    b.output(as_nobody(&mut cmd, &xdg_of(b)))
}

/// The words of each line the runtime printed.
fn words(out: &Out) -> Vec<Vec<&str>> {
    let lines = out.stdout.lines();
    lines.map(|l| l.split_whitespace().collect()).collect()
}

fn xdg_of(b: &Bundle) -> PathBuf {
    b.dir.join("xdg")
}

#[test]
fn a_user_who_is_not_root_runs_a_container_as_root_of_its_user_namespace() {
    let b = rootless("id -u; cat /proc/self/uid_map");
    let out = rt_as_nobody(&b, &["run", "--bundle", s(&b.path), &b.id]);
    out.assert_ok();
    let lines = words(&out);
    assert_eq!(lines, [vec!["0"], vec!["0", "65534", "1"]], "{out:#?}");
    b.assert_no_leftovers();
}

#[test]
fn a_rootless_container_keeps_its_state_under_xdg_runtime_dir_and_runs_exec() {
    let b = rootless("sleep 1000");
    rt_as_nobody(&b, &["create", "--bundle", s(&b.path), &b.id]).assert_ok();
    assert!(
        b.state_root.join(&b.id).is_dir(),
        "no state under {}",
        b.state_root.display()
    );
    rt_as_nobody(&b, &["start", &b.id]).assert_ok();
    let out = rt_as_nobody(&b, &["exec", &b.id, "sh", "-c", "id -u; id -g"]);
    out.assert_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"]
    );
    rt_as_nobody(&b, &["kill", &b.id, "KILL"]).assert_ok();
    let deleted = rt_as_nobody(&b, &["delete", "--force", &b.id]);
    deleted.assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn a_rootless_memory_limit_without_a_delegated_cgroup_is_refused_and_leaves_nothing() {
    let mut b = rootless("true");
    b.set("/linux/resources", json!({"memory": {"limit": 64 << 20}}));
    let out = rt_as_nobody(&b, &["create", "--bundle", s(&b.path), &b.id]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("cgroup"), "{out:#?}");
    b.assert_no_leftovers();
}

/// `run` as nobody of a bundle mapping nobody and 65536 ids from 200000,
/// in a private mount namespace whose /etc/subuid and /etc/subgid (they
/// cover the host's) say `granted`.
fn run_with_ranges(script: &str, granted: &str) -> (Bundle, Out) {
    let mut b = rootless(script);
    let maps = json!([
        {"containerID": 0, "hostID": NOBODY, "size": 1},
        {"containerID": 1, "hostID": 200000, "size": 65536}
    ]);
    b.set("/linux/uidMappings", maps.clone());
    b.set("/linux/gidMappings", maps);
    let ranges = b.dir.join("subid");
    std::fs::write(&ranges, granted).unwrap();
    let script = "mount --bind \"$0\" /etc/subuid && mount --bind \"$0\" /etc/subgid && \
                  exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(&ranges)
        .arg("env")
        .arg(format!("XDG_RUNTIME_DIR={}", s(&xdg_of(&b))))
        .arg(runtime())
        .args(runtime_flags())
        .args(["run", "--bundle", s(&b.path), &b.id])
        .current_dir(&b.dir);
    let out = b.output(&mut cmd);
    (b, out)
}

/// Ranges beyond the caller's own id come from /etc/subuid and
/// /etc/subgid through newuidmap and newgidmap, as with runc.
#[test]
fn subordinate_ranges_are_mapped_through_newuidmap_and_newgidmap() {
    let script = "cat /proc/self/uid_map /proc/self/gid_map";
    let (b, out) = run_with_ranges(script, "nobody:200000:65536\n");
    out.assert_ok();
    let lines = words(&out);
    let want = [vec!["0", "65534", "1"], vec!["1", "200000", "65536"]];
    assert_eq!(lines, [&want[..], &want[..]].concat(), "{out:#?}");
    b.assert_no_leftovers();
}

/// Ranges /etc/subuid does not grant are refused, naming the helper, and
/// nothing is left.
#[test]
fn ranges_the_user_was_not_granted_are_refused_and_leave_nothing() {
    let (b, out) = run_with_ranges("true", "nobody:300000:10\n");
    out.assert_failed();
    berth_message(&out, "newuidmap", "runc words the refusal its own way");
    b.assert_no_leftovers();
}

/// Without a cgroup, what acts through one (pause, ps, update) is refused
/// naming the cgroup, and the container runs on.
#[test]
fn pause_ps_and_update_without_a_delegated_cgroup_are_refused() {
    let b = rootless("sleep 1000");
    rt_as_nobody(&b, &["run", "-d", "--bundle", s(&b.path), &b.id]).assert_ok();
    for verb in [
        &["pause"][..],
        &["ps"],
        &["update", "--memory", "100000000"],
    ] {
        let out = rt_as_nobody(&b, &[verb, &[&b.id]].concat());
        assert_ne!(out.code, 0, "{verb:?}: {out:#?}");
        assert!(out.stderr.contains("cgroup"), "{verb:?}: {out:#?}");
    }
    let state = rt_as_nobody(&b, &["state", &b.id]);
    assert!(
        state.assert_ok().stdout.contains("\"running\""),
        "{state:#?}"
    );
    rt_as_nobody(&b, &["delete", "--force", &b.id]).assert_ok();
    b.assert_no_leftovers();
}

/// The user's own systemd manager (user@65534.service, started by root as
/// logind would at login), and its runtime directory.
fn user_manager() -> PathBuf {
    let started = Command::new("systemctl")
        .args(["start", &format!("user@{NOBODY}.service")])
        .status();
    assert!(started.unwrap().success(), "start nobody's user manager");
    let runtime_dir = PathBuf::from(format!("/run/user/{NOBODY}"));
    let private = runtime_dir.join("systemd/private");
    poll("no user manager socket", || private.exists(), |up| *up);
    runtime_dir
}

/// The runtime as nobody with `--systemd-cgroup`, from a scope of nobody's
/// user manager, as a user's shell runs it (`systemd-run --user --scope`).
fn rt_in_user_scope(b: &Bundle, runtime_dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new("systemd-run");
    cmd.args(["--user", "--scope", "--quiet"])
        .arg(runtime())
        .arg("--systemd-cgroup")
        .args(runtime_flags())
        .args(args)
        .current_dir(&b.dir);
    b.output(as_nobody(&mut cmd, runtime_dir))
}

/// On cgroup v2 under systemd, a rootless container's cgroup is a scope of
/// the user's manager (in user.slice), which delegates the controllers its
/// limits need; exec from the user's scopes joins it.
#[test]
#[ignore = "needs systemd's user manager: runs in the v2 guest (hack/vm-test)"]
fn a_rootless_container_under_systemd_gets_a_scope_of_the_users_manager_with_its_limits() {
    let runtime_dir = user_manager();
    let mut b = rootless("sleep 1000");
    b.state_root = runtime_dir.join(runtime().file_name().unwrap());
    let limits = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}});
    b.set("/linux/resources", limits);
    let run = ["run", "-d", "--bundle", s(&b.path), &b.id];
    rt_in_user_scope(&b, &runtime_dir, &run).assert_ok();
    let pid = b.state_json()["pid"].as_i64().unwrap();
    let cgroup = CgroupOf::pid(pid).dir("");
    let manager =
        format!("/sys/fs/cgroup/user.slice/user-{NOBODY}.slice/user@{NOBODY}.service/user.slice/");
    assert!(cgroup.starts_with(&manager), "{}", cgroup.display());
    let read = |file| std::fs::read_to_string(cgroup.join(file)).unwrap();
    assert_eq!(read("memory.max").trim(), (64 << 20).to_string());
    assert_eq!(read("pids.max").trim(), "20");
    let exec = ["exec", &b.id, "sh", "-c", "cat /proc/self/cgroup; id -u"];
    let out = rt_in_user_scope(&b, &runtime_dir, &exec);
    assert_eq!(out.assert_ok().stdout, "0::/\n0\n", "{out:#?}");
    let delete = ["delete", "--force", &b.id];
    rt_in_user_scope(&b, &runtime_dir, &delete).assert_ok();
    b.assert_no_leftovers();
    assert!(!cgroup.exists(), "{} is left", cgroup.display());
    let mut systemctl = Command::new("systemctl");
    as_nobody(systemctl.arg("--user"), &runtime_dir);
    let units = leftovers::units_named(&b.id, &mut systemctl);
    assert!(units.is_empty(), "{units:?}");
    // The same name again gets a scope again.
    rt_in_user_scope(&b, &runtime_dir, &run).assert_ok();
    rt_in_user_scope(&b, &runtime_dir, &delete).assert_ok();
    b.assert_no_leftovers();
}
