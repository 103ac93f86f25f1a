//! Running commands with a deadline and capturing what they print.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one runtime command may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What a command did: its exit code (128+N when killed by signal N) and output.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert_ne!(self.code, 0, "expected a failure, got {self:#?}");
        self
    }

    /// Each line of stdout with its runs of blanks made one space (for
    /// columns `ps` or `cat` align).
    pub fn stdout_words(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Asserts a failure whose stderr is exactly `line`: the one line runc
    /// prints when the process's own execve fails.
    #[track_caller]
    pub fn assert_one_error_line(&self, line: &str) -> &Self {
        self.assert_failed();
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines, [line], "{self:?}");
        self
    }

    /// Asserts stderr contains `needle`, ignoring case.
    #[track_caller]
    pub fn assert_mentions(&self, needle: &str) -> &Self {
        self.assert_mentions_any(&[needle])
    }

    /// Asserts stderr contains one of `needles` (for a problem that may be
    /// worded two ways, e.g. "timeout" and "timed out"), ignoring case.
    #[track_caller]
    pub fn assert_mentions_any(&self, needles: &[&str]) -> &Self {
        let stderr = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| stderr.contains(&n.to_lowercase())),
            "expected stderr to mention one of {needles:?}, got {self:#?}"
        );
        self
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs `cmd` with stdin closed and stdout/stderr in files under `dir`.
/// Files, not pipes: a container made by `create` inherits the runtime's
/// stdio, and a pipe would not reach EOF until the container exits.
pub fn run(cmd: &mut Command, dir: &Path) -> Out {
    run_with_stdin(cmd, dir, Stdio::null())
}

/// [`run`] with `stdin` as the command's stdin.
pub fn run_with_stdin(cmd: &mut Command, dir: &Path, stdin: Stdio) -> Out {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) = (
        dir.join(format!("cmd{n}.out")),
        dir.join(format!("cmd{n}.err")),
    );
    let child = cmd
        .stdin(stdin)
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let code = wait(child, &format!("{cmd:?}"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Out {
        code,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// Waits for `child`, killing it and failing the test after [`DEADLINE`].
pub fn wait(mut child: Child, what: &str) -> i32 {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    match rx.recv_timeout(DEADLINE) {
        Ok(status) => exit_code(status.expect("wait for child")),
        Err(_) => {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // A cleanup in a destructor while a test fails must not abort
            // the whole suite: the first failure is the one to read.
            if std::thread::panicking() {
                eprintln!("{what} did not finish within {DEADLINE:?}");
                return -1;
            }
            let processes = process_table();
            panic!("{what} did not finish within {DEADLINE:?}; processes:\n{processes}");
        }
    }
}

/// The host's processes with what each waits in, to show who a hung
/// command waited for.
fn process_table() -> String {
    Command::new("ps")
        .args([
            "-o",
            "pid,ppid,stat,etimes,wchan:24,args:200",
            "--ppid",
            "2",
            "--pid",
            "2",
            "-N",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("ps: {e}"))
}

/// Polls `probe` until `done` holds for what it returns, and returns that;
/// after [`DEADLINE`] fails the test with `what` and the last value.
#[track_caller]
pub fn poll<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let value = probe();
        if done(&value) {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "{what}: {value:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One message from `conn` into `data` and the fd it carries (SCM_RIGHTS);
/// `what` names the socket in the failure. Returns the bytes read.
#[track_caller]
pub fn receive_fd(conn: &UnixStream, data: &mut [u8], what: &str) -> (usize, OwnedFd) {
    let mut control = [0u64; 8]; // u64 for the alignment cmsghdr needs
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at live buffers of the lengths it states.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
    assert!(
        n >= 0,
        "recvmsg on {what}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: recvmsg filled msg; CMSG_FIRSTHDR checks the control length.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS,
            "the message on {what} carried no file descriptor"
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
        ))
    };
    (n as usize, fd)
}

/// Gives the child `file` as its fd 3, inheritable (for `--preserve-fds`).
/// `file` must outlive the spawn.
pub fn give_fd3(cmd: &mut Command, file: &File) {
    use std::os::unix::process::CommandExt;
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: the closure only calls dup2 and fcntl, which are
    // async-signal-safe, on an fd that is open until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let ok = libc::dup2(fd, 3) == 3 && libc::fcntl(3, libc::F_SETFD, 0) == 0;
            ok.then_some(()).ok_or_else(std::io::Error::last_os_error)
        })
    };
}
