//! `linux.personality`: the execution domain the container's processes run
//! in (`LINUX32` makes `uname -m` answer i686). init takes it from the
//! spec, an exec'd process from init, as runc's do.

use crate::error::{Context, OsError};
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

/// The kernel's number for the spec's domain (personality(2)).
pub fn of_spec(p: &LinuxPersonality) -> libc::c_ulong {
    match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }
}

/// The personality process `pid` runs with, if it can be read.
pub fn of_process(pid: i32) -> Option<libc::c_ulong> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/personality")).ok()?;
    libc::c_ulong::from_str_radix(text.trim(), 16).ok()
}

/// Sets the calling process's personality; exec keeps it.
pub fn set(persona: libc::c_ulong) -> Result<(), OsError> {
    // SAFETY: personality takes a plain integer.
    let r = unsafe { libc::personality(persona) };
    nix::errno::Errno::result(r)
        .map(drop)
        .context("set linux.personality")
}
