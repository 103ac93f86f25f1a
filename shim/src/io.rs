//! A process's stdio as containerd names it: FIFOs (what `ctr` makes),
//! `file://` paths, or nothing. The container writes into the output FIFOs
//! itself, so no copy threads run for output and nothing is left to drain
//! when it exits; the shim keeps a reader on each, so opening them for
//! writing never blocks and a client that comes and goes does not kill the
//! container with SIGPIPE. Stdin goes through a pipe the shim fills from the
//! FIFO (one thread, only for processes with stdin): as with containerd's
//! runc shim, the process sees end-of-file on CloseIO, not when a client
//! closes the FIFO (it may attach again), and never before one opened it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("open {what} {path}: {source}")]
pub struct IoError {
    what: &'static str,
    path: String,
    source: std::io::Error,
}

/// The three stdio paths of a process, as the request gives them.
#[derive(Clone, Debug, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl StdioPaths {
    pub fn new(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> StdioPaths {
        StdioPaths {
            stdin: stdin.to_owned(),
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            terminal,
        }
    }
}

/// The ends of the process's stdio the shim holds while the process lives.
#[derive(Default)]
pub struct Held {
    stdin: Option<StdinCopy>,
    /// Readers that keep the output FIFOs open.
    outputs: Vec<File>,
}

/// The pipe into the process's stdin, shared with the thread that fills it
/// from the FIFO; taking the writer out is CloseIO.
struct StdinCopy {
    fifo: String,
    writer: Arc<Mutex<Option<File>>>,
}

impl Held {
    pub fn close_stdin(&mut self) {
        if let Some(copy) = self.stdin.take() {
            copy.writer.lock().unwrap().take();
            // Wake the copy thread from its read: it finds no pipe and ends.
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&copy.fifo)
                .and_then(|mut f| f.write_all(b"\n"));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.close_stdin();
    }
}

/// The container's stdio for a runtime command that starts a process.
pub struct Stdio3 {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// The ends of the stdio the process gets (None: nothing, /dev/null).
pub struct Ends {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl Ends {
    pub fn into_stdio(self) -> Stdio3 {
        let stdio = |f: Option<File>| f.map_or_else(Stdio::null, Stdio::from);
        Stdio3 {
            stdin: stdio(self.stdin),
            stdout: stdio(self.stdout),
            stderr: stdio(self.stderr),
        }
    }
}

/// Whose stdio it is: a `binary://` logger is told in its environment;
/// the ends the process gets belong to `io_ids` (uid, gid) when the
/// `IoUid`/`IoGid` options set them.
pub struct Owner<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub io_ids: Option<(u32, u32)>,
}

/// Opens the process's stdio: what the runtime command hands the process,
/// and what the shim keeps.
pub fn open(paths: &StdioPaths, owner: &Owner) -> Result<(Ends, Held), IoError> {
    let mut held = Held::default();
    let stdin = match paths.stdin.as_str() {
        "" => None,
        path => {
            let (reader, copy) = copy_stdin(path)?;
            held.stdin = Some(copy);
            Some(reader)
        }
    };
    let (stdout, stderr) = match paths.stdout.strip_prefix("binary://") {
        Some(uri) => {
            let (out, err) = logger::start(uri, owner)?;
            (Some(out), Some(err))
        }
        None => (
            open_output(&paths.stdout, "stdout", &mut held)?,
            open_output(&paths.stderr, "stderr", &mut held)?,
        ),
    };
    let ends = Ends {
        stdin,
        stdout,
        stderr,
    };
    if let Some(ids) = owner.io_ids {
        ends.give_to(ids)?;
    }
    Ok((ends, held))
}

impl Ends {
    /// Hands the pipes and FIFOs to (uid, gid), as containerd's runc shim
    /// does with its pipes, so that a process of that user may reopen its
    /// stdio (`/dev/stdout`, `/proc/self/fd/1`). A `file://` log stays
    /// the host's.
    fn give_to(&self, (uid, gid): (u32, u32)) -> Result<(), IoError> {
        let ends = [&self.stdin, &self.stdout, &self.stderr];
        let err = |source| IoError {
            what: "stdio for",
            path: format!("{uid}:{gid}"),
            source,
        };
        for file in ends.into_iter().flatten() {
            if !file.metadata().map_err(err)?.is_file() {
                nix::unistd::fchown(file, Some(uid.into()), Some(gid.into()))
                    .map_err(|e| err(e.into()))?;
            }
        }
        Ok(())
    }
}

/// A pipe for the process's stdin and the thread that fills it from the
/// FIFO. The thread opens the FIFO for reading and writing: that never
/// blocks, and the FIFO never reads end-of-file while the shim holds it.
fn copy_stdin(path: &str) -> Result<(File, StdinCopy), IoError> {
    let (reader, writer) = std::io::pipe().map_err(|source| IoError {
        what: "stdin pipe",
        path: path.to_owned(),
        source,
    })?;
    let writer = Arc::new(Mutex::new(Some(File::from(std::os::fd::OwnedFd::from(
        writer,
    )))));
    let (fifo, shared) = (path.to_owned(), Arc::clone(&writer));
    let mut from = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .map_err(|source| IoError {
            what: "stdin",
            path: fifo.clone(),
            source,
        })?;
    std::thread::spawn(move || {
        pump(&mut from, &shared);
        shared.lock().unwrap().take();
    });
    let reader = File::from(std::os::fd::OwnedFd::from(reader));
    let copy = StdinCopy {
        fifo: path.to_owned(),
        writer,
    };
    Ok((reader, copy))
}

/// Copies until CloseIO takes the pipe away (or the process closed it).
fn pump(from: &mut File, to: &Mutex<Option<File>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        let mut to = to.lock().unwrap();
        let Some(pipe) = to.as_mut() else { return };
        if pipe.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// An output path: a FIFO (the shim's reader first, then the writer for the
/// process), a `file://` URL (appended to), or "" (nothing).
fn open_output(path: &str, what: &'static str, held: &mut Held) -> Result<Option<File>, IoError> {
    let err = |source| IoError {
        what,
        path: path.to_owned(),
        source,
    };
    if path.is_empty() {
        return Ok(None);
    }
    if let Some(file) = path.strip_prefix("file://") {
        if let Some(dir) = Path::new(file).parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(err)?;
        return Ok(Some(f));
    }
    let is_fifo = std::fs::metadata(path).map_err(err)?.file_type().is_fifo();
    if is_fifo {
        let keeper = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(err)?;
        held.outputs.push(keeper);
    }
    let writer = OpenOptions::new().write(true).open(path).map_err(err)?;
    Ok(Some(writer))
}

/// `binary://PATH?KEY=VALUE...` loggers, as containerd defines them: PATH
/// runs with `KEY VALUE...` as arguments, CONTAINER_ID and
/// CONTAINER_NAMESPACE in its environment, the process's stdout and stderr
/// to read on fds 3 and 4, and fd 5 to close once it is ready.
mod logger {
    use super::{IoError, Owner};
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// Starts the logger; returns the write ends for the process's stdout
    /// and stderr, once the logger said it is ready.
    pub fn start(uri: &str, owner: &Owner) -> Result<(File, File), IoError> {
        let err = |source| IoError {
            what: "binary logger",
            path: uri.to_owned(),
            source,
        };
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let (out_r, out_w) = std::io::pipe().map_err(err)?;
        let (err_r, err_w) = std::io::pipe().map_err(err)?;
        let (mut ready_r, ready_w) = std::io::pipe().map_err(err)?;
        let fds: [OwnedFd; 3] = [out_r.into(), err_r.into(), ready_w.into()];
        let raw = fds.each_ref().map(|f| f.as_raw_fd());
        let mut cmd = Command::new(path);
        cmd.args(query_args(query))
            .env("CONTAINER_ID", owner.id)
            .env("CONTAINER_NAMESPACE", owner.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure only calls fcntl and dup2, which are
        // async-signal-safe, on fds that stay open until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first, so no dup2 overwrites a source;
                // close-on-exec, so only the dup2 targets reach the logger.
                let mut high = [0; 3];
                for (h, fd) in high.iter_mut().zip(raw) {
                    *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                }
                for (target, fd) in (3..).zip(high) {
                    if fd < 0 || libc::dup2(fd, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.spawn().map_err(err)?;
        drop(cmd);
        drop(fds);
        // Ready when it closes (or writes to) fd 5.
        let _ = ready_r.read(&mut [0u8; 1]);
        Ok((
            File::from(OwnedFd::from(out_w)),
            File::from(OwnedFd::from(err_w)),
        ))
    }

    /// `a=1&b` as the arguments `a 1 b`.
    pub fn query_args(query: &str) -> Vec<String> {
        query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .flat_map(|kv| match kv.split_once('=') {
                Some((k, v)) => vec![k.to_owned(), v.to_owned()],
                None => vec![kv.to_owned()],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const OWNER: Owner = Owner {
        id: "c1",
        namespace: "ns",
        io_ids: None,
    };

    #[test]
    fn a_binary_logger_gets_the_output_and_the_owner() {
        let dir = temp_dir("logger");
        let log = dir.join("log");
        let script = dir.join("logger");
        let text = format!(
            "#!/bin/sh\nexec 5>&-\n{{ echo \"$CONTAINER_NAMESPACE/$CONTAINER_ID $*\"; cat <&3; }} > {}\n",
            log.display()
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let uri = format!("binary://{}?flag=1", script.display());
        let paths = StdioPaths {
            stdout: uri.clone(),
            stderr: uri,
            ..StdioPaths::default()
        };
        let (ends, _held) = open(&paths, &OWNER).unwrap();
        let mut echo = std::process::Command::new("echo")
            .arg("hello")
            .stdout(ends.into_stdio().stdout)
            .spawn()
            .unwrap();
        echo.wait().unwrap();
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&log).unwrap_or_default() != "ns/c1 flag 1\nhello\n" {
            assert!(
                start.elapsed().as_secs() < 10,
                "{:?}",
                std::fs::read_to_string(&log)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn query_pairs_become_arguments() {
        assert_eq!(logger::query_args("a=1&b&c=x"), ["a", "1", "b", "c", "x"]);
        assert!(logger::query_args("").is_empty());
    }

    fn fifo(dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-shim-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn stdin_fifos(name: &str) -> (std::path::PathBuf, StdioPaths) {
        let dir = temp_dir(name);
        let paths = StdioPaths {
            stdin: fifo(&dir, "in"),
            stdout: fifo(&dir, "out"),
            ..StdioPaths::default()
        };
        (dir, paths)
    }

    #[test]
    fn stdin_outlives_the_client_and_ends_at_close_io() {
        let (dir, paths) = stdin_fifos("eof");
        let (ends, mut held) = open(&paths, &OWNER).expect("opens without a client");
        let mut client = OpenOptions::new().write(true).open(&paths.stdin).unwrap();
        client.write_all(b"x").unwrap();
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(50));
        held.close_stdin();
        let mut got = String::new();
        ends.stdin.unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn close_io_ends_stdin_while_the_client_holds_the_fifo() {
        let (dir, paths) = stdin_fifos("closeio");
        let (ends, mut held) = open(&paths, &OWNER).unwrap();
        let _client = OpenOptions::new().write(true).open(&paths.stdin).unwrap();
        held.close_stdin();
        let mut got = String::new();
        ends.stdin.unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn io_ids_own_the_pipes_but_not_a_log_file() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "needs root");
            return eprintln!("skipped: chown needs root");
        }
        let (dir, mut paths) = stdin_fifos("ids");
        paths.stderr = format!("file://{}", dir.join("err.log").display());
        let owner = Owner {
            io_ids: Some((1234, 5678)),
            ..OWNER
        };
        let (ends, _held) = open(&paths, &owner).unwrap();
        let ids = |f: &Option<File>| {
            let meta = f.as_ref().unwrap().metadata().unwrap();
            (meta.uid(), meta.gid())
        };
        assert_eq!(ids(&ends.stdin), (1234, 5678));
        assert_eq!(ids(&ends.stdout), (1234, 5678));
        assert_eq!(ids(&ends.stderr), (0, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_url_is_appended_to() {
        let dir = temp_dir("file");
        let log = dir.join("sub/out.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "old\n").unwrap();
        let paths = StdioPaths {
            stdout: format!("file://{}", log.display()),
            ..StdioPaths::default()
        };
        let (ends, _held) = open(&paths, &OWNER).unwrap();
        let mut out = std::process::Command::new("echo")
            .arg("new")
            .stdout(ends.into_stdio().stdout)
            .spawn()
            .unwrap();
        out.wait().unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "old\nnew\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
