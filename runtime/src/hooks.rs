//! OCI hooks: run each hook with the container's state on stdin, its own
//! args and env, and an optional timeout. Output is captured so a failing
//! hook's complaint ends up in berth's error message, not in the
//! container's stdio.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The six points of the lifecycle where hooks run, in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The list's name in config.json.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// This kind's hooks in `h`.
    pub fn of(self, h: &Hooks) -> &[Hook] {
        #[allow(deprecated)]
        let list = match self {
            HookKind::Prestart => h.prestart(),
            HookKind::CreateRuntime => h.create_runtime(),
            HookKind::CreateContainer => h.create_container(),
            HookKind::StartContainer => h.start_container(),
            HookKind::Poststart => h.poststart(),
            HookKind::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook that failed, named as runc names it: its kind and its index in
/// that list (people grep for "error running prestart hook #0").
#[derive(Debug, thiserror::Error)]
#[error("error running {kind} hook #{index}: {path}: {failure}")]
pub struct HookError {
    kind: HookKind,
    index: usize,
    path: PathBuf,
    failure: Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot run: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{status}{output}")]
    Failed { status: String, output: String },
    #[error("timed out after {0}s")]
    Timeout(i64),
}

/// Runs the `kind` hooks of `hooks` in order, each given `state` (the
/// runtime spec's state, serialised once); the first failure stops the
/// rest.
pub fn run(
    kind: HookKind,
    hooks: Option<&Hooks>,
    state: &impl serde::Serialize,
) -> Result<(), HookError> {
    outcomes(kind, hooks, state).collect()
}

/// Runs every hook of `kind`, also after one fails, and returns the
/// failures: the runtime spec makes a failing poststop hook a warning,
/// after which the remaining hooks still run.
pub fn run_every(
    kind: HookKind,
    hooks: Option<&Hooks>,
    state: &impl serde::Serialize,
) -> Vec<HookError> {
    outcomes(kind, hooks, state)
        .filter_map(Result::err)
        .collect()
}

/// Each hook of `kind` run in order as the iterator is pulled.
fn outcomes<'a>(
    kind: HookKind,
    hooks: Option<&'a Hooks>,
    state: &impl serde::Serialize,
) -> impl Iterator<Item = Result<(), HookError>> + 'a {
    let list = hooks.map_or(&[][..], |h| kind.of(h));
    let state = match list.is_empty() {
        true => String::new(),
        false => serde_json::to_string(state).expect("a hook state serialises"),
    };
    list.iter().enumerate().map(move |(index, h)| {
        run_one(h, &state).map_err(|failure| HookError {
            kind,
            index,
            path: h.path().clone(),
            failure,
        })
    })
}

fn run_one(hook: &Hook, state: &str) -> Result<(), Failure> {
    let spawn_err = Failure::Spawn;
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|kv| kv.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out_w.try_clone().map_err(spawn_err)?))
        .stderr(Stdio::from(out_w));
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not a failure.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|s| Instant::now() + Duration::from_secs(s as u64));
    let output = drain_until_eof(out_r, deadline);
    let status = match output {
        Ok(_) => child.wait().map_err(spawn_err)?,
        Err(()) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::Timeout(hook.timeout().unwrap_or_default()));
        }
    };
    if status.success() {
        return Ok(());
    }
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s} ({})", signal_name(s)),
        _ => status.to_string(),
    };
    let text = String::from_utf8_lossy(&output.unwrap_or_default())
        .trim()
        .to_string();
    Err(Failure::Failed {
        status,
        output: if text.is_empty() {
            text
        } else {
            format!(": {text}")
        },
    })
}

/// Reads the hook's output until every writer closed it (the hook and
/// anything it left running), or gives up at the deadline.
fn drain_until_eof(fd: OwnedFd, deadline: Option<Instant>) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut file = std::fs::File::from(fd);
    let mut buf = [0u8; 4096];
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(());
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Ok(out),
            Ok(_) => {}
        }
        match file.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(out),
            Ok(n) if out.len() < 64 * 1024 => out.extend_from_slice(&buf[..n]),
            Ok(_) => {}
        }
    }
}

/// The C library's words for signal `s`, lowercased as Go's are (runc
/// says "signal: bad system call"; people grep for it).
fn signal_name(s: i32) -> String {
    // SAFETY: strsignal returns a pointer to a string that stays valid
    // until the next call; it is copied at once.
    let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(s)) };
    name.to_string_lossy().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    /// Hooks with `h` as the only one of `kind`.
    fn hooks(kind: HookKind, h: Hook) -> Hooks {
        serde_json::from_value(serde_json::json!({ kind.name(): [h] })).unwrap()
    }

    #[test]
    fn passes_state_args_and_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", "echo \"$0 $X\" > \"$1\"; cat >> \"$1\"", "a1", out],
            "env": ["X=y"],
        }));
        run(
            HookKind::Prestart,
            Some(&hooks(HookKind::Prestart, h)),
            &serde_json::json!({"id": "c"}),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "a1 y\n{\"id\":\"c\"}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_reports_status_and_output() {
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}),
        );
        let e = run(
            HookKind::CreateRuntime,
            Some(&hooks(HookKind::CreateRuntime, h)),
            &(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "error running createRuntime hook #0: /bin/sh: exit status 3: boom"
        );
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}),
        );
        let e = run(
            HookKind::Poststart,
            Some(&hooks(HookKind::Poststart, h)),
            &(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "error running poststart hook #0: /bin/sh: timed out after 1s"
        );
    }

    #[test]
    fn missing_binary() {
        let h = hook(serde_json::json!({"path": "/nonexistent/hook"}));
        let e = run(HookKind::Prestart, Some(&hooks(HookKind::Prestart, h)), &())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("error running prestart hook #0: /nonexistent/hook: cannot run"),
            "{e}"
        );
    }
}
