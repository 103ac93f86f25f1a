//! `process.terminal` with `--console-socket`, and `consoleSize`.

use integration::{json, s, Bundle};
use std::process::Command;

#[test]
fn terminal_output_reaches_the_console_socket() {
    let mut b = Bundle::new();
    b.sh("echo hello-tty");
    assert_eq!(b.run_with_console(), "hello-tty\n");
    b.assert_no_leftovers();
}

#[test]
fn terminal_is_stdin_stdout_and_stderr() {
    let mut b = Bundle::new();
    b.sh("test -t 0 && test -t 1 && test -t 2 && tty");
    assert_eq!(b.run_with_console(), "/dev/pts/0\n");
}

#[test]
fn a_read_only_dev_still_gets_the_console() {
    let mut b = Bundle::new();
    b.add_mount_option("/dev", "ro")
        .sh("echo via-console > /dev/console; grep -c '^tmpfs /dev tmpfs ro,' /proc/mounts");
    assert_eq!(b.run_with_console(), "via-console\n1\n");
    b.assert_no_leftovers();
}

#[test]
fn inits_warnings_stay_out_of_the_terminal() {
    // init warns once the terminal is its stderr: the record is berth's to
    // write, in berth's log, not the container's output.
    let mut b = Bundle::new();
    b.set("/process/capabilities/ambient", json!(["CAP_CHOWN"]))
        .sh("echo only-this");
    assert_eq!(b.run_with_console(), "only-this\n");
}

#[test]
fn console_size_is_applied() {
    let mut b = Bundle::new();
    b.set("/process/consoleSize", json!({"height": 33, "width": 101}))
        .sh("stty size");
    assert_eq!(b.run_with_console(), "33 101\n");
}

#[test]
fn terminal_belongs_to_a_non_root_user() {
    // The user's, so it may reopen its terminal; the group stays tty.
    let mut b = Bundle::new();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .sh("stat -L -c '%u:%g %a' /proc/self/fd/0 /proc/self/fd/2");
    assert_eq!(b.run_with_console(), "1000:5 620\n1000:5 620\n");
    b.assert_no_leftovers();
}

#[test]
fn a_foreground_terminal_passes_newlines_unchanged() {
    // Without --console-socket the runtime relays the terminal itself and,
    // as runc does, clears ONLCR: no "\r" is added to each line.
    // runc wants a terminal of its own there: script(1) gives it one.
    let mut b = Bundle::new();
    b.set("/process/terminal", json!(true)).sh("stty -a");
    let mut run = b.command();
    run.args(["run", "--bundle", s(&b.path), &b.id]);
    let line = std::iter::once(run.get_program())
        .chain(run.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .envs(run.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(&b.path);
    let out = b.output(&mut script);
    let stty = &out.assert_ok().stdout;
    assert!(stty.contains("-onlcr"), "{stty}");
}
