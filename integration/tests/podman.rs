//! podman 5.4 (trixie) and 5.8 (sid) running berth, as podman users run it:
//! `--runtime berth` named in containers.conf (`BERTH_PODMAN=conf`, the
//! default) or `--runtime` with berth's path (`path`); `runc` runs the
//! same scenarios on the stack's runc to prove them honest. See
//! `integration::podman`; the scenarios Docker shares are in
//! `integration::engine_scenarios`.

use integration::engine_scenarios::{self as scenarios, SLEEPER};
use integration::{podman_or_skip, CgroupOf, Engine};

#[test]
fn the_client_is_the_stacks_podman() {
    let p = podman_or_skip!();
    let want = integration::stack::engines().unwrap().podman.unwrap();
    let out = p.cli(&["version", "--format", "{{.Client.Version}}"]);
    assert!(
        out.assert_ok().stdout.starts_with(want),
        "expected podman {want}x: {out:#?}"
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    scenarios::run_prints_the_output_and_exits_with_the_code(podman_or_skip!());
}

#[test]
fn the_runtime_under_test_serves_the_container() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&[], &SLEEPER);
    scenarios::assert_the_runtime_serves(&c, &p.binary);
    c.remove();
}

#[test]
fn exec_runs_in_the_container_as_the_user_asked() {
    scenarios::exec_runs_in_the_container_as_the_user_asked(podman_or_skip!());
}

#[test]
fn run_it_gives_the_process_a_terminal_of_the_clients_size() {
    scenarios::run_it_gives_the_process_a_terminal_of_the_clients_size(podman_or_skip!());
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    scenarios::logs_keep_stdout_and_stderr_apart(podman_or_skip!());
}

#[test]
fn stop_sends_sigterm_and_podman_keeps_the_exit_code() {
    scenarios::stop_sends_sigterm_and_keeps_the_exit_code(podman_or_skip!());
}

#[test]
fn pause_freezes_the_container_and_unpause_thaws_it() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&[], &SLEEPER);
    let cgroup = CgroupOf::pid(c.pid());
    let frozen = || cgroup.read(("freezer", "freezer.state"), "cgroup.freeze");
    c.verb("pause", &[], &[]).assert_ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "paused");
    assert!(["FROZEN", "1"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("unpause", &[], &[]).assert_ok();
    assert!(["THAWED", "0"].contains(&frozen().as_str()), "{}", frozen());
    c.verb("exec", &[], &["true"]).assert_ok();
    c.remove();
}

#[test]
fn a_memory_limit_reaches_the_containers_cgroup() {
    let p = podman_or_skip!();
    let c = p.container();
    c.run_detached(&["-m", "256m"], &SLEEPER);
    let limit = CgroupOf::pid(c.pid()).read(("memory", "memory.limit_in_bytes"), "memory.max");
    assert_eq!(limit, (256 << 20).to_string());
    c.remove();
}

#[test]
fn a_published_port_is_reached_from_loopback() {
    scenarios::a_published_port_is_reached_from_loopback(podman_or_skip!());
}
