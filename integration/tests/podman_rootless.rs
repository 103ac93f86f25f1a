//! Rootless podman (issue 18): podman 5.4 (trixie) and 5.8 (sid) run by a
//! user who is not root, with berth as its runtime (`BERTH_PODMAN` as in
//! the podman suite; `runc` proves the scenarios honest). podman makes a
//! user namespace of its own from the user's subordinate ids and runs the
//! runtime as root there; on this cgroup v1 host no cgroup is delegated to
//! the user, so there are none. See `integration::podman`.

use integration::engine_scenarios as scenarios;
use integration::{rootless_podman_or_skip, Engine};

#[test]
fn podman_runs_rootless_as_the_user() {
    let p = rootless_podman_or_skip!();
    let out = p.cli(&["info", "--format", "{{.Host.Security.Rootless}}"]);
    assert_eq!(out.assert_ok().stdout, "true\n", "{out:#?}");
    scenarios::a_rootless_container_is_the_users_and_the_runtime_serves_it(p, &p.binary);
}

#[test]
fn the_containers_ids_are_the_users_own_and_subordinate_ones() {
    scenarios::the_containers_ids_are_the_users_own_and_subordinate_ones(
        rootless_podman_or_skip!(),
    );
}

#[test]
fn run_prints_the_output_and_exits_with_the_code() {
    scenarios::run_prints_the_output_and_exits_with_the_code(rootless_podman_or_skip!());
}

#[test]
fn exec_runs_in_the_container_as_the_user_asked() {
    scenarios::exec_runs_in_the_container_as_the_user_asked(rootless_podman_or_skip!());
}

#[test]
fn run_it_gives_the_process_a_terminal_of_the_clients_size() {
    scenarios::run_it_gives_the_process_a_terminal_of_the_clients_size(rootless_podman_or_skip!());
}

#[test]
fn logs_keep_stdout_and_stderr_apart() {
    scenarios::logs_keep_stdout_and_stderr_apart(rootless_podman_or_skip!());
}

#[test]
fn stop_sends_sigterm_and_podman_keeps_the_exit_code() {
    scenarios::stop_sends_sigterm_and_keeps_the_exit_code(rootless_podman_or_skip!());
}

/// Through pasta, the rootless network podman starts for the container.
#[test]
fn a_published_port_is_reached_from_loopback() {
    scenarios::a_published_port_is_reached_from_loopback(rootless_podman_or_skip!());
}
