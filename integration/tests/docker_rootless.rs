//! Rootless Docker (issue 18): Docker 26 (trixie) and 28 (sid) in Docker's
//! rootless mode, run by a user who is not root, with berth as a runtime
//! (`BERTH_DOCKER=runtime` or `json`; `runc` proves the scenarios honest).
//! rootlesskit makes a user namespace from the user's subordinate ids and
//! runs dockerd, its containerd and the runtime as root there; on this
//! cgroup v1 host no cgroup is delegated, so there are none. See
//! `integration::docker`.

use integration::engine_scenarios as scenarios;
use integration::{rootless_docker_or_skip, Engine};

#[test]
fn dockerd_runs_rootless_as_the_user() {
    let d = rootless_docker_or_skip!();
    let out = d.cli(&["info", "--format", "{{.SecurityOptions}}"]);
    assert!(out.assert_ok().stdout.contains("rootless"), "{out:#?}");
    scenarios::a_rootless_container_is_the_users_and_the_runtime_serves_it(d, &d.binary);
}

#[test]
fn the_containers_ids_are_the_users_own_and_subordinate_ones() {
    scenarios::the_containers_ids_are_the_users_own_and_subordinate_ones(
        rootless_docker_or_skip!(),
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    scenarios::run_prints_the_output_and_exits_with_the_code(rootless_docker_or_skip!());
}

#[test]
fn exec_runs_in_the_container_as_the_user_asked() {
    scenarios::exec_runs_in_the_container_as_the_user_asked(rootless_docker_or_skip!());
}

#[test]
fn run_it_gives_the_process_a_terminal_of_the_clients_size() {
    scenarios::run_it_gives_the_process_a_terminal_of_the_clients_size(rootless_docker_or_skip!());
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    scenarios::logs_keep_stdout_and_stderr_apart(rootless_docker_or_skip!());
}

#[test]
fn stop_sends_sigterm_and_docker_keeps_the_exit_code() {
    scenarios::stop_sends_sigterm_and_keeps_the_exit_code(rootless_docker_or_skip!());
}

/// Through rootlesskit's port driver, from the jail's loopback.
#[test]
fn a_published_port_is_reached_from_loopback() {
    scenarios::a_published_port_is_reached_from_loopback(rootless_docker_or_skip!());
}
