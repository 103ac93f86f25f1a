//! `process.terminal` with `--console-socket`, and `consoleSize`.

use integration::{json, Bundle};

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
fn console_size_is_applied() {
    let mut b = Bundle::new();
    b.set("/process/consoleSize", json!({"height": 33, "width": 101}))
        .sh("stty size");
    assert_eq!(b.run_with_console(), "33 101\n");
}
