//! `linux.seccomp` as a classic BPF filter, compiled by berth itself and
//! loaded with seccomp(2). seccompiler was the plan, but it gives one match
//! action per filter and covers one architecture, while an OCI profile
//! mixes actions rule by rule and must also stop x86 and x32 calls;
//! stacking its filters changes which action wins. The compiler here is
//! small and checked instruction by instruction against an interpreter.

mod arch;
mod bpf;
mod compile;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag as Flag};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {0}")]
    Invalid(String),
    #[error("load the seccomp filter ({len} instructions): {source}")]
    Load { len: usize, source: nix::Error },
}

/// A compiled profile, ready to load into the calling process.
#[derive(Clone, Debug)]
pub struct Filter {
    program: Vec<bpf::Insn>,
    flags: u32,
}

/// Compiles `s`, refusing what berth cannot enforce rather than loading a
/// weaker filter.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let notify = std::iter::once(s.default_action())
        .chain(s.syscalls().iter().flatten().map(|sc| sc.action()))
        .any(|a| a == LinuxSeccompAction::ScmpActNotify);
    if notify || s.listener_path().is_some() {
        return Err(SeccompError::Invalid(
            "SCMP_ACT_NOTIFY (a seccomp agent at listenerPath) is not supported by berth yet"
                .into(),
        ));
    }
    let flags = s.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            Flag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        }
    }) as u32;
    Ok(Filter {
        program: compile::program(s)?,
        flags,
    })
}

impl Filter {
    /// Loads the filter into this process (and, with TSYNC, its threads).
    /// Without no-new-privileges this needs CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<(), SeccompError> {
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
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        nix::errno::Errno::result(rc)
            .map(drop)
            .map_err(|source| SeccompError::Load {
                len: self.program.len(),
                source,
            })
    }
}
