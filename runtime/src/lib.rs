//! berth: an OCI container runtime engine.
//!
//! Each module owns one concern and its own error type; [`Error`] rolls them
//! up so the CLI (and later the shim) can report one message that names the
//! cause.

pub mod capabilities;
pub mod cgroups;
pub mod clock;
pub mod container;
pub mod control;
pub mod criu;
pub mod dbus;
pub mod error;
pub mod exec;
pub mod fdpass;
pub mod fds;
pub mod files;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod lsm;
pub mod mempolicy;
pub mod namespaces;
pub mod netdev;
pub mod netlink;
pub mod personality;
pub mod process;
pub mod procfs;
pub mod procspec;
pub mod rootfs;
pub mod sched;
pub mod sealed;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
pub mod tty;

/// Version of the runtime specification berth implements.
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Signal(#[from] signal::SignalError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Checkpoint(#[from] container::CheckpointError),
    /// An OS call of a verb's own (the modules wrap theirs).
    #[error(transparent)]
    Os(#[from] error::OsError),
}

pub type Result<T> = std::result::Result<T, Error>;
