//! `linux.seccomp` as a classic BPF filter, compiled by berth itself and
//! loaded with seccomp(2). seccompiler was the plan, but it gives one match
//! action per filter and covers one architecture, while an OCI profile
//! mixes actions rule by rule and must also stop x86 and x32 calls;
//! stacking its filters changes which action wins. The compiler here is
//! small and checked instruction by instruction against an interpreter.

pub mod agent;
mod arch;
mod bpf;
mod compile;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag as Flag};
use std::os::fd::{FromRawFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {0}")]
    Invalid(String),
    #[error("load the seccomp filter ({len} instructions): {source}")]
    Load { len: usize, source: nix::Error },
    #[error("linux.seccomp.listenerPath {path}: failed to connect with seccomp agent specified in the seccomp profile: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("linux.seccomp.listenerPath {path}: {what}: {source}")]
    Agent {
        path: std::path::PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

/// A compiled profile, ready to load into the calling process.
#[derive(Clone, Debug)]
pub struct Filter {
    program: Vec<bpf::Insn>,
    flags: u32,
    /// Some rule hands its calls to the agent at `listenerPath`.
    notifies: bool,
}

/// Syscalls berth makes once a filter is loaded: sendmsg hands the
/// notification fd to the agent (notified, it would wait forever for an
/// agent that has no fd yet); write carries berth's own reports, which
/// must not wait on an agent's answer (runc refuses it too).
const OWN_CALLS: [&str; 2] = ["sendmsg", "write"];

/// Compiles `s`, refusing what berth cannot enforce rather than loading a
/// weaker filter.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let notifies = check_notify(s)?;
    let program = compile::program(s)?;
    let flags = filter_flags(s.flags().as_deref());
    crate::logging::debug(&format!(
        "seccomp: {} instructions, loaded with flags {flags:#x}",
        program.len()
    ));
    Ok(Filter {
        program,
        flags,
        notifies,
    })
}

/// The flags the filter is loaded with, as runc picks them: none given
/// means SPEC_ALLOW (no speculation mitigations forced on the container,
/// as Docker has it); TSYNC is moot, init being single-threaded.
fn filter_flags(given: Option<&[Flag]>) -> u32 {
    let Some(given) = given else {
        return libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
    };
    given.iter().fold(0, |acc, f| {
        acc | match f {
            Flag::SeccompFilterFlagTsync => 0,
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        }
    }) as u32
}

/// Whether `s` notifies an agent; refuses the uses runc refuses: notify
/// as the default action (berth's own calls would wait on the agent) or
/// without a listenerPath to reach one.
fn check_notify(s: &LinuxSeccomp) -> Result<bool, SeccompError> {
    let refuse = |why: &str| Err(SeccompError::Invalid(why.into()));
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return refuse("defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }
    let notified: Vec<&String> = s
        .syscalls()
        .iter()
        .flatten()
        .filter(|sc| sc.action() == LinuxSeccompAction::ScmpActNotify)
        .flat_map(|sc| sc.names())
        .collect();
    if let Some(name) = notified.iter().find(|n| OWN_CALLS.contains(&n.as_str())) {
        return refuse(&format!(
            "SCMP_ACT_NOTIFY cannot be used for the {name} syscall: berth makes it after the filter is loaded"
        ));
    }
    if !notified.is_empty() && s.listener_path().is_none() {
        return refuse("SCMP_ACT_NOTIFY needs listenerPath, the agent's socket");
    }
    Ok(!notified.is_empty())
}

impl Filter {
    /// What the program returns for a call, by the interpreter the unit
    /// tests trust (it panics where the kernel's verifier would refuse).
    #[cfg(fuzzing)]
    pub fn verdict(&self, arch: u32, nr: i32, args: [u64; 6]) -> u32 {
        bpf::run(&self.program, &bpf::Data { nr, arch, args })
    }

    /// Whether loading gives a notification fd for the agent.
    pub fn notifies(&self) -> bool {
        self.notifies
    }

    /// Loads the filter into this process; returns the notification fd
    /// when the filter notifies. Without no-new-privileges this needs
    /// CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            // bpf::Insn has sock_filter's layout (repr(C), same fields).
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp reads `prog` and the instructions it points to
        // (both alive for the call) and copies them into the kernel.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags | self.listener_flag(),
                &prog as *const libc::sock_fprog,
            )
        };
        let rc = nix::errno::Errno::result(rc).map_err(|source| SeccompError::Load {
            len: self.program.len(),
            source,
        })?;
        // SAFETY: with NEW_LISTENER, seccomp returns a new fd we now own.
        Ok(self
            .notifies
            .then(|| unsafe { OwnedFd::from_raw_fd(rc as i32) }))
    }

    fn listener_flag(&self) -> u32 {
        match self.notifies {
            true => libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
            false => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(v: serde_json::Value) -> Result<Filter, SeccompError> {
        compile(&serde_json::from_value(v).expect("a LinuxSeccomp"))
    }

    #[test]
    fn notify_needs_an_agent_and_a_way_to_reach_it() {
        let rule = |name| serde_json::json!([{"names": [name], "action": "SCMP_ACT_NOTIFY"}]);
        let with = |default, name, listener: bool| {
            let mut p = serde_json::json!({"defaultAction": default, "syscalls": rule(name)});
            if listener {
                p["listenerPath"] = "/run/agent.sock".into();
            }
            compiled(p).map(|f| f.notifies()).map_err(|e| e.to_string())
        };
        assert_eq!(with("SCMP_ACT_ALLOW", "mkdir", true), Ok(true));
        let refused = [
            (with("SCMP_ACT_ALLOW", "mkdir", false), "listenerPath"),
            (with("SCMP_ACT_NOTIFY", "mkdir", true), "default action"),
            (
                with("SCMP_ACT_ALLOW", "sendmsg", true),
                "the sendmsg syscall",
            ),
            (with("SCMP_ACT_ALLOW", "write", true), "the write syscall"),
        ];
        for (got, needle) in refused {
            assert!(got.as_ref().is_err_and(|e| e.contains(needle)), "{got:?}");
        }
        let plain = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"});
        assert!(!compiled(plain).unwrap().notifies());
    }

    #[test]
    fn filter_flags_default_to_spec_allow_and_ignore_tsync() {
        let spec_allow = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
        assert_eq!(filter_flags(None), spec_allow);
        assert_eq!(filter_flags(Some(&[])), 0);
        let log_tsync = [Flag::SeccompFilterFlagTsync, Flag::SeccompFilterFlagLog];
        assert_eq!(
            filter_flags(Some(&log_tsync)),
            libc::SECCOMP_FILTER_FLAG_LOG as u32
        );
    }
}
