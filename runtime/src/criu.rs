//! Driving the `criu` binary through its command line: `dump`, `pre-dump`,
//! `restore` and `check --feature`. CRIU writes its own log into the work
//! directory; a failure is reported with the cause that log gives and
//! its path, so that the caller sees why without digging.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("cannot run criu ({binary}): {cause} (install criu, or name it with --criu)")]
    NotFound {
        binary: String,
        cause: std::io::Error,
    },
    #[error("criu {action} failed ({status}): {cause} (log: {})", log.display())]
    Failed {
        action: &'static str,
        status: std::process::ExitStatus,
        cause: String,
        log: PathBuf,
    },
    #[error("{flag} needs CRIU's {feature} support, which this kernel or criu lacks (criu check --feature {feature} fails)")]
    Unsupported {
        flag: &'static str,
        feature: &'static str,
    },
}

/// The criu binary berth runs (`--criu`, else `criu` on `PATH`).
pub struct Criu {
    binary: String,
}

/// Where a run of criu finds and leaves its images, and logs.
pub struct Dirs<'a> {
    pub images: &'a Path,
    pub work: &'a Path,
    /// An extra configuration file (`--config`), whose `log-file` wins
    /// over berth's, as a config file given over criu's RPC does.
    pub config: Option<&'a Path>,
}

/// The log file a criu configuration file names (`log-file`, with `=` or
/// a blank before its value), if any.
fn log_file_of(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config).unwrap_or_default();
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("--");
        let value = l.strip_prefix("log-file")?;
        if !value.starts_with(['=', ' ', '\t']) {
            return None;
        }
        let value = value.trim_start_matches(['=', ' ', '\t']).trim();
        (!value.is_empty()).then(|| value.trim_matches('"').to_owned())
    })
}

impl Criu {
    pub fn new(binary: Option<&str>) -> Criu {
        Criu {
            binary: binary.unwrap_or("criu").to_owned(),
        }
    }

    /// Whether `criu check --feature NAME` passes.
    pub fn supports(&self, feature: &str) -> bool {
        Command::new(&self.binary)
            .args(["check", "--feature", feature])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Fails with the flag's name when criu lacks what it needs.
    pub fn require(&self, flag: &'static str, feature: &'static str) -> Result<(), CriuError> {
        match self.supports(feature) {
            true => Ok(()),
            false => Err(CriuError::Unsupported { flag, feature }),
        }
    }

    /// Runs `criu ACTION -D images -W work -o ACTION.log -v4 ARGS`. The
    /// fds in `inherit` (CRIU's `--inherit-fd fd[N]`) stay open in criu
    /// at their own numbers; every other fd of berth is close-on-exec.
    /// criu first writes `0` to each of `join` (a container's cgroup
    /// files), so that what it restores starts in the container's cgroup
    /// whatever its cgroup mode, never in the caller's.
    pub fn run(
        &self,
        action: &'static str,
        dirs: &Dirs,
        args: &[OsString],
        inherit: &[i32],
        join: &[std::os::fd::OwnedFd],
    ) -> Result<(), CriuError> {
        let configured = dirs.config.and_then(log_file_of);
        let log_name = configured
            .clone()
            .unwrap_or_else(|| format!("{}.log", action.trim_start_matches("pre-")));
        let mut cmd = Command::new(&self.binary);
        cmd.arg(action)
            .arg("--images-dir")
            .arg(dirs.images)
            .arg("--work-dir")
            .arg(dirs.work);
        if let Some(config) = dirs.config {
            cmd.arg("--config").arg(config);
        }
        if configured.is_none() {
            cmd.args(["--log-file", &log_name]);
        }
        cmd.arg("-v4")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let kept = inherit.to_vec();
        let join: Vec<i32> = join.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure only calls write and fcntl, which are
        // async-signal-safe, on fds berth holds open.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &join {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for &fd in &kept {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let status = cmd.status().map_err(|cause| CriuError::NotFound {
            binary: self.binary.clone(),
            cause,
        })?;
        if status.success() {
            return Ok(());
        }
        let log = dirs.work.join(&log_name);
        Err(CriuError::Failed {
            action,
            status,
            cause: cause(&log),
            log,
        })
    }
}

/// The last line of a CRIU log that reports an error ("Error (criu/...):
/// ..."), trimmed of its source position, before the one that says CRIU
/// gave up ("Restoring FAILED."): earlier ones may be complaints it got
/// past, later ones come of its cleaning up.
fn cause(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let messages = text.lines().filter_map(|l| {
        let (_, rest) = l.split_once("Error (")?;
        Some(rest.split_once("): ").map_or(rest, |(_, msg)| msg).trim())
    });
    let before_giving_up = messages.take_while(|m| !m.ends_with("FAILED."));
    let cause = before_giving_up.last();
    cause.unwrap_or("no error in its log").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_error_is_the_last_before_criu_gives_up() {
        let dir = std::env::temp_dir().join(format!("berth-criu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("dump.log");
        std::fs::write(
            &log,
            "(00.001) Warn  (criu/kerndat.c:1): x\n\
             (00.002) Error (criu/util.c:1534): rlimit: first\n\
             (00.002) Error (criu/mount.c:381): mnt: second\n\
             (00.003) Error (criu/cr-dump.c:2): Dumping FAILED.\n\
             (00.003) Error (criu/cgroup.c:2): cg: cleaning up\n\
             (00.004) Unlock network\n",
        )
        .unwrap();
        assert_eq!(cause(&log), "mnt: second");
        assert_eq!(cause(&dir.join("none")), "no error in its log");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_config_file_names_its_log_file_either_way() {
        let dir = std::env::temp_dir().join(format!("berth-criu-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("c.conf");
        for (text, want) in [
            ("tcp-established\nlog-file=a.log\n", Some("a.log")),
            ("log-file b.log\n", Some("b.log")),
            ("--log-file=\"c.log\"\n", Some("c.log")),
            ("log-files-are-elsewhere\ntcp-established\n", None),
        ] {
            std::fs::write(&config, text).unwrap();
            assert_eq!(log_file_of(&config).as_deref(), want, "{text:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
