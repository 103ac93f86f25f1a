//! The architectures a filter covers on this host and their syscall
//! numbers (Debian's kernel runs x86_64, i386 and, if enabled, x32 code).

use super::SeccompError;
use oci_spec::runtime::Arch as Oci;
use std::collections::HashMap;
use std::sync::OnceLock;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 calls come with x86_64's audit arch and this bit in the number.
pub const X32_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    X32,
    X86,
}

impl Arch {
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
        }
    }

    /// For the arches that share x86_64's audit arch: whether the x32 bit
    /// must be set.
    pub fn x32_bit(self) -> Option<bool> {
        match self {
            Arch::X86_64 => Some(false),
            Arch::X32 => Some(true),
            Arch::X86 => None,
        }
    }

    /// The number of syscall `name`, if this arch has it. x32 uses
    /// x86_64's table with the x32 bit (its few calls of its own, 512 and
    /// up, are not named here).
    pub fn number(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => names_x86_64().get(name).copied(),
            Arch::X32 => Arch::X86_64.number(name).map(|n| n | X32_BIT),
            Arch::X86 => names_x86().get(name).copied(),
        }
    }
}

/// Name to number, built once: the syscalls crate's `from_str` is a
/// match over ~450 names, and Docker's profile makes about 1100 lookups.
type Names = HashMap<&'static str, u32>;

fn names_x86_64() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        syscalls::x86_64::Sysno::iter()
            .map(|s| (s.name(), s.id() as u32))
            .collect()
    })
}

fn names_x86() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        syscalls::x86::Sysno::iter()
            .map(|s| (s.name(), s.id() as u32))
            .collect()
    })
}

/// The sections of a filter for `listed` (`linux.seccomp.architectures`):
/// the native arch always, then the listed compat arches. Arches this
/// kernel cannot run never make a call, so they need no section.
pub fn selected(listed: &[Oci]) -> Result<Vec<Arch>, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::Invalid(
            "seccomp filters are supported on x86_64 hosts only".into(),
        ));
    }
    let mut out = vec![Arch::X86_64];
    for (oci, arch) in [(Oci::ScmpArchX32, Arch::X32), (Oci::ScmpArchX86, Arch::X86)] {
        if listed.contains(&oci) {
            out.push(arch);
        }
    }
    Ok(out)
}
