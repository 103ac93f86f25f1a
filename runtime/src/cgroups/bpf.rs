//! The cgroup v2 device filter. cgroup v2 has no `devices.allow` and
//! `devices.deny` files: each open or mknod of a device node is decided by
//! an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the
//! cgroup, as runc's `libcontainer/cgroups/devices/devicefilter` does.
//!
//! Three steps, the first two pure and unit-tested without a kernel:
//! 1. [`parse_rule`] reads a rule in the v1 text form `"c 1:3 rwm"`.
//! 2. [`Filter::from_rules`] replays the ordered rules the way the v1
//!    kernel applies writes to `devices.allow`/`devices.deny`, and
//!    [`Filter::program`] turns the result into BPF instructions.
//! 3. [`attach_device_filter`] loads the program and attaches it.
//!
//! The semantics are the v1 kernel's, so a container sees the same devices
//! on a v1 and a v2 host. In the usual cases that is "the last matching rule
//! wins, default deny": an `a` rule resets everything before it (its access
//! is ignored, as by the kernel), and a later allow or deny of the same
//! device overrides an earlier one. Where a plain last-match-wins would
//! differ, the kernel's rules are followed:
//! - separate allows of the same device add up: `c 1:3 r` then `c 1:3 w`
//!   allows an `O_RDWR` open, which needs read and write at once;
//! - a rule against the current default only takes access away from an
//!   exception for exactly the same type and major:minor: after
//!   `a *:* rwm` denied, `c 1:* rwm` allowed, a denied `c 1:3 rwm` changes
//!   nothing (v1 cannot punch a hole in a wildcard exception).

use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("device rule {rule:?}: {why}")]
    Rule { rule: String, why: String },
    #[error("cgroup device filter: open cgroup directory {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup device filter: BPF_PROG_LOAD of {insns} instructions: {errno}{}", verifier_log(.log))]
    Load {
        insns: usize,
        errno: Errno,
        log: String,
    },
    #[error("cgroup device filter: BPF_PROG_ATTACH to {}: {errno}", path.display())]
    Attach { path: PathBuf, errno: Errno },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log:\n{log}")
    }
}

// struct bpf_cgroup_dev_ctx, from include/uapi/linux/bpf.h.
const BPF_DEVCG_DEV_BLOCK: u32 = 1;
const BPF_DEVCG_DEV_CHAR: u32 = 2;
const BPF_DEVCG_ACC_MKNOD: u32 = 1;
const BPF_DEVCG_ACC_READ: u32 = 2;
const BPF_DEVCG_ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;

/// The largest major and minor the kernel's internal dev_t can hold: a
/// rule naming a bigger number can never match a device.
const MAX_MAJOR: u32 = (1 << 12) - 1;
const MAX_MINOR: u32 = (1 << 20) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    /// `a`: every device; as a rule, a reset of the whole policy.
    All,
    Block,
    Char,
}

impl DevType {
    fn bpf(self) -> u32 {
        match self {
            DevType::Block => BPF_DEVCG_DEV_BLOCK,
            DevType::Char => BPF_DEVCG_DEV_CHAR,
            DevType::All => unreachable!("an `a` rule never becomes an exception"),
        }
    }
}

/// One parsed rule. `None` for a major or minor is `*`; `access` is a set
/// of `BPF_DEVCG_ACC_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

/// Parses `"TYPE MAJOR:MINOR ACCESS"`: TYPE one of `a b c`, MAJOR and
/// MINOR a number or `*`, ACCESS a non-empty subset of `rwm`. A bare `a`
/// is accepted too, as by the kernel.
pub fn parse_rule(allow: bool, text: &str) -> Result<Rule, BpfError> {
    let bad = |why: &str| BpfError::Rule {
        rule: text.to_string(),
        why: why.to_string(),
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let typ = match parts.first().copied() {
        Some("a") => DevType::All,
        Some("b") => DevType::Block,
        Some("c") => DevType::Char,
        _ => return Err(bad("type must be a, b or c")),
    };
    if typ == DevType::All && parts.len() == 1 {
        return Ok(Rule {
            allow,
            typ,
            major: None,
            minor: None,
            access: ACC_ALL,
        });
    }
    let [_, numbers, access] = parts[..] else {
        return Err(bad("expected \"TYPE MAJOR:MINOR ACCESS\""));
    };
    let number = |s: &str| -> Result<Option<u32>, BpfError> {
        match s {
            "*" => Ok(None),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(Some)
                .map_err(|_| bad("device number out of range")),
            _ => Err(bad("major and minor must be a number or *")),
        }
    };
    let (major, minor) = numbers
        .split_once(':')
        .ok_or_else(|| bad("expected MAJOR:MINOR"))?;
    let (major, minor) = (number(major)?, number(minor)?);
    let mut bits = 0;
    for c in access.chars() {
        let bit = match c {
            'r' => BPF_DEVCG_ACC_READ,
            'w' => BPF_DEVCG_ACC_WRITE,
            'm' => BPF_DEVCG_ACC_MKNOD,
            _ => return Err(bad("access must be a subset of rwm")),
        };
        if bits & bit != 0 {
            return Err(bad("access names a letter twice"));
        }
        bits |= bit;
    }
    if typ == DevType::All && (major.is_some() || minor.is_some()) {
        return Err(bad("an `a` rule must be `a *:*`"));
    }
    Ok(Rule {
        allow,
        typ,
        major,
        minor,
        access: bits,
    })
}

/// A device (type and major:minor, `None` = `*`) with the access that the
/// exception grants (default deny) or takes away (default allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

/// The state of a v1 devices cgroup: a default and its exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl Filter {
    /// Applies the rules in order, as the v1 kernel applies writes to
    /// `devices.allow`/`devices.deny` (security/device_cgroup.c), starting
    /// from deny-all.
    pub fn from_rules(rules: &[(bool, String)]) -> Result<Filter, BpfError> {
        let mut f = Filter {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for (allow, text) in rules {
            let r = parse_rule(*allow, text)?;
            if r.typ == DevType::All {
                f.default_allow = r.allow;
                f.exceptions.clear();
                continue;
            }
            let same = |e: &Exception| e.typ == r.typ && e.major == r.major && e.minor == r.minor;
            if r.allow == f.default_allow {
                // dev_exception_rm: only an exact match loses access.
                for e in f.exceptions.iter_mut().filter(|e| same(e)) {
                    e.access &= !r.access;
                }
                f.exceptions.retain(|e| e.access != 0);
            } else if let Some(e) = f.exceptions.iter_mut().find(|e| same(e)) {
                // dev_exception_add merges into an exact match.
                e.access |= r.access;
            } else {
                f.exceptions.push(Exception {
                    typ: r.typ,
                    major: r.major,
                    minor: r.minor,
                    access: r.access,
                });
            }
        }
        Ok(f)
    }

    /// The program: for each exception, if the device matches (and, by
    /// default deny, the exception grants all the access asked for; by
    /// default allow, it takes away any of it), return the opposite of
    /// the default; after all of them, return the default.
    pub fn program(&self) -> Vec<Insn> {
        let mut prog = vec![
            ldx_w(R_TYPE, R_CTX, CTX_ACCESS_TYPE),
            alu32_imm(BPF_AND, R_TYPE, 0xffff),
            ldx_w(R_ACCESS, R_CTX, CTX_ACCESS_TYPE),
            alu32_imm(BPF_RSH, R_ACCESS, 16),
            ldx_w(R_MAJOR, R_CTX, CTX_MAJOR),
            ldx_w(R_MINOR, R_CTX, CTX_MINOR),
        ];
        let verdict = i32::from(!self.default_allow);
        for e in &self.exceptions {
            if e.major.is_some_and(|m| m > MAX_MAJOR) || e.minor.is_some_and(|m| m > MAX_MINOR) {
                continue; // matches no device
            }
            // Conditional jumps to the end of this block ("next exception")
            // are emitted with offset 0 and patched once its length is known.
            let mut block = vec![jmp_imm(BPF_JNE, R_TYPE, e.typ.bpf() as i32)];
            if let Some(major) = e.major {
                block.push(jmp_imm(BPF_JNE, R_MAJOR, major as i32));
            }
            if let Some(minor) = e.minor {
                block.push(jmp_imm(BPF_JNE, R_MINOR, minor as i32));
            }
            if self.default_allow {
                // Denied if any access asked for is in the exception.
                block.push(mov32_reg(R_TMP, R_ACCESS));
                block.push(alu32_imm(BPF_AND, R_TMP, e.access as i32));
                block.push(jmp_imm(BPF_JEQ, R_TMP, 0));
            } else if e.access != ACC_ALL {
                // Allowed only if all access asked for is in the exception.
                block.push(mov32_reg(R_TMP, R_ACCESS));
                block.push(alu32_imm(BPF_AND, R_TMP, e.access as i32));
                block.push(jmp_reg(BPF_JNE, R_TMP, R_ACCESS));
            }
            block.push(alu32_imm(BPF_MOV, R0, verdict));
            block.push(exit());
            let len = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                if insn.code & BPF_CLASS == BPF_JMP && insn.code != BPF_JMP | BPF_EXIT {
                    insn.off = (len - i - 1) as i16;
                }
            }
            prog.extend(block);
        }
        prog.push(alu32_imm(BPF_MOV, R0, i32::from(self.default_allow)));
        prog.push(exit());
        prog
    }
}

/// `struct bpf_insn`: opcode, dst and src registers (4 bits each), offset
/// and immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// Instruction classes.
const BPF_CLASS: u8 = 0x07; // mask
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04; // 32-bit: results are zero-extended
const BPF_JMP: u8 = 0x05; // 64-bit comparisons, imm sign-extended
                          // Load size and mode.
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
// Operand source: immediate or register.
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
// ALU operations.
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
// Jump operations.
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// Registers: R0 the return value, R1 the context on entry.
const R0: u8 = 0;
const R_CTX: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;
const R_TMP: u8 = 6;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    // The kernel's `__u8 dst_reg:4, src_reg:4` bitfield.
    let regs = if cfg!(target_endian = "little") {
        dst | src << 4
    } else {
        dst << 4 | src
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// dst = *(u32 *)(src + off)
fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
}

/// dst = (u32)dst OP imm (`BPF_MOV`: dst = imm)
fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
}

/// dst = (u32)src
fn mov32_reg(dst: u8, src: u8) -> Insn {
    insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
}

/// if dst OP imm: pc += off
fn jmp_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm)
}

/// if dst OP src: pc += off
fn jmp_reg(op: u8, dst: u8, src: u8) -> Insn {
    insn(BPF_JMP | op | BPF_X, dst, src, 0, 0)
}

/// return R0
fn exit() -> Insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

// bpf(2) commands and constants.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const LOG_SIZE: usize = 256 * 1024;

/// The leading fields of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The leading fields of `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// bpf(cmd, attr, sizeof attr)
///
/// # Safety
/// `attr` must be the layout the kernel expects for `cmd`, and every
/// pointer in it must be valid for the kernel to read (or, for a log
/// buffer, write) for the duration of the call.
unsafe fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> Result<libc::c_long, Errno> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: `attr` is a live, exclusively borrowed value of `size` bytes;
    // the caller vouches for its layout and the pointers inside it.
    Errno::result(unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) })
}

fn load(prog: &[Insn]) -> Result<OwnedFd, BpfError> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let attr = |log: &mut [u8]| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: a BPF_PROG_LOAD attr pointing at `prog` (insn_cnt 8-byte
    // `struct bpf_insn`s) and the NUL-terminated `license`, both alive
    // until after the call; no log buffer (log_size 0).
    let first = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr(&mut [])) };
    let errno = match first {
        // SAFETY: BPF_PROG_LOAD returned a new file descriptor we own.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => e,
    };
    // Ask again with the verifier's log, to say why.
    let mut log = vec![0u8; LOG_SIZE];
    // SAFETY: as above, and `log` is a writable buffer of log_size bytes
    // that outlives the call.
    if let Ok(fd) = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr(&mut log)) } {
        // SAFETY: BPF_PROG_LOAD returned a new file descriptor we own.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err(BpfError::Load {
        insns: prog.len(),
        errno,
        log: String::from_utf8_lossy(&log[..end]).trim_end().to_string(),
    })
}

/// Loads the device filter for `rules` (ordered `(allow, "c 1:3 rwm")`
/// pairs, as from `writes::device_rules`) and attaches it to the cgroup v2
/// directory `dir` with `BPF_F_ALLOW_MULTI`. The program stays attached
/// (and alive) until the cgroup is removed.
pub fn attach_device_filter(dir: &Path, rules: &[(bool, String)]) -> Result<(), BpfError> {
    let prog = load(&Filter::from_rules(rules)?.program())?;
    let cgroup: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| BpfError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: a BPF_PROG_ATTACH attr of plain integers: two open fds
    // (both alive until after the call), the attach type and flags.
    unsafe { sys_bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|errno| BpfError::Attach {
        path: dir.to_path_buf(),
        errno,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(bool, &str)]) -> Vec<(bool, String)> {
        list.iter().map(|(a, r)| (*a, r.to_string())).collect()
    }

    const R: u32 = BPF_DEVCG_ACC_READ;
    const W: u32 = BPF_DEVCG_ACC_WRITE;
    const M: u32 = BPF_DEVCG_ACC_MKNOD;
    const B: u32 = BPF_DEVCG_DEV_BLOCK;
    const C: u32 = BPF_DEVCG_DEV_CHAR;

    /// Runs `prog` on one `bpf_cgroup_dev_ctx`, knowing only the opcodes
    /// the generator emits. Like the verifier it refuses reads of unset
    /// registers, loads outside the context, backward or out-of-range
    /// jumps, and a return value that is not 0 or 1.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> bool {
        let ctx = [typ | access << 16, major, minor];
        let mut reg = [0u64; 11];
        let mut set = [false; 11];
        set[R_CTX as usize] = true; // R1 holds the context pointer...
        let mut ctx_in_r1 = true; // ...until something overwrites it
        let mut pc = 0;
        loop {
            let i = prog.get(pc).copied().expect("pc past the end");
            let (dst, src) = if cfg!(target_endian = "little") {
                ((i.regs & 0xf) as usize, (i.regs >> 4) as usize)
            } else {
                ((i.regs >> 4) as usize, (i.regs & 0xf) as usize)
            };
            let get = |r: usize| {
                assert!(set[r], "pc {pc}: R{r} read before it is set");
                reg[r]
            };
            // Fields an instruction does not use must be 0, as the
            // verifier demands (a MOV's off, for one, means movsx).
            let class = i.code & BPF_CLASS;
            let is_jump = class == BPF_JMP && i.code != BPF_JMP | BPF_EXIT;
            let (uses_src, uses_off, uses_imm) = match class {
                BPF_LDX => (true, true, false),
                _ if i.code & BPF_X != 0 => (true, is_jump, false),
                _ => (false, is_jump, i.code != BPF_JMP | BPF_EXIT),
            };
            assert!(uses_src || src == 0, "pc {pc}: src is reserved");
            assert!(uses_off || i.off == 0, "pc {pc}: off is reserved");
            assert!(uses_imm || i.imm == 0, "pc {pc}: imm is reserved");
            let (imm32, imm64) = (i.imm as u32, i.imm as i64 as u64);
            let taken = match i.code {
                c if c == BPF_LDX | BPF_W | BPF_MEM => {
                    assert!(
                        src == R_CTX as usize && ctx_in_r1,
                        "pc {pc}: load not from ctx"
                    );
                    assert!(
                        i.off >= 0 && i.off % 4 == 0 && i.off < 12,
                        "pc {pc}: ctx offset"
                    );
                    reg[dst] = u64::from(ctx[i.off as usize / 4]);
                    false
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => {
                    reg[dst] = u64::from(get(dst) as u32 & imm32);
                    false
                }
                c if c == BPF_ALU | BPF_RSH | BPF_K => {
                    reg[dst] = u64::from((get(dst) as u32) >> imm32);
                    false
                }
                c if c == BPF_ALU | BPF_MOV | BPF_K => {
                    reg[dst] = u64::from(imm32);
                    false
                }
                c if c == BPF_ALU | BPF_MOV | BPF_X => {
                    reg[dst] = u64::from(get(src) as u32);
                    false
                }
                c if c == BPF_JMP | BPF_JEQ | BPF_K => get(dst) == imm64,
                c if c == BPF_JMP | BPF_JNE | BPF_K => get(dst) != imm64,
                c if c == BPF_JMP | BPF_JNE | BPF_X => get(dst) != get(src),
                c if c == BPF_JMP | BPF_EXIT => {
                    return match get(0) {
                        0 => false,
                        1 => true,
                        v => panic!("returns {v}"),
                    }
                }
                c => panic!("pc {pc}: opcode {c:#x} not expected"),
            };
            if matches!(class, BPF_LDX | BPF_ALU) {
                set[dst] = true;
                ctx_in_r1 &= dst != R_CTX as usize;
            }
            assert!(i.off >= 0, "pc {pc}: backward jump");
            pc += 1 + if taken { i.off as usize } else { 0 };
        }
    }

    /// The v1 kernel's check (match_exception / match_exception_partial),
    /// straight from the exception list.
    fn reference(f: &Filter, typ: u32, access: u32, major: u32, minor: u32) -> bool {
        let hit = |e: &&Exception| {
            e.typ.bpf() == typ
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        let mut matching = f.exceptions.iter().filter(hit);
        if f.default_allow {
            !matching.any(|e| access & e.access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }

    fn allows(list: &[(bool, &str)], typ: u32, access: u32, major: u32, minor: u32) -> bool {
        let f = Filter::from_rules(&rules(list)).unwrap();
        let got = run(&f.program(), typ, access, major, minor);
        assert_eq!(got, reference(&f, typ, access, major, minor), "{list:?}");
        got
    }

    #[test]
    fn parses_good_rules() {
        let r = parse_rule(true, "c 1:3 rwm").unwrap();
        assert_eq!(
            r,
            Rule {
                allow: true,
                typ: DevType::Char,
                major: Some(1),
                minor: Some(3),
                access: R | W | M
            }
        );
        let r = parse_rule(false, "b 8:* r").unwrap();
        assert_eq!(
            (r.typ, r.major, r.minor, r.access),
            (DevType::Block, Some(8), None, R)
        );
        let r = parse_rule(true, "c *:* m").unwrap();
        assert_eq!((r.major, r.minor, r.access), (None, None, M));
        let r = parse_rule(true, "c 136:* wr").unwrap();
        assert_eq!(r.access, R | W);
        let r = parse_rule(false, "a *:* rwm").unwrap();
        assert_eq!((r.allow, r.typ), (false, DevType::All));
        assert_eq!(parse_rule(true, "a").unwrap().typ, DevType::All);
        assert_eq!(
            parse_rule(true, "c 4294967295:0 r").unwrap().major,
            Some(u32::MAX)
        );
    }

    #[test]
    fn refuses_bad_rules() {
        for bad in [
            "",
            "x 1:3 rwm",
            "p 1:3 rwm",
            "c 1:3",
            "c 1:3 rwm extra",
            "c 1-3 rwm",
            "c 1:3 rwx",
            "c 1:3 rr",
            "c -1:3 r",
            "c 1:+3 r",
            "c 4294967296:0 r",
            "c :3 r",
            "a 1:3 rwm",
        ] {
            let e = parse_rule(true, bad).unwrap_err();
            assert!(
                matches!(&e, BpfError::Rule { rule, .. } if rule == bad),
                "{bad:?}: {e}"
            );
        }
        let e = Filter::from_rules(&rules(&[(false, "a *:* rwm"), (true, "c 1:3 q")]));
        assert!(e.unwrap_err().to_string().contains("\"c 1:3 q\""));
    }

    /// Rules, then a request: device type, access, major, minor; and
    /// whether it is allowed.
    type Case<'a> = (&'a [(bool, &'a str)], u32, u32, u32, u32, bool);

    #[test]
    fn program_matches_v1_semantics() {
        let deny_all = (false, "a *:* rwm");
        let allow_all = (true, "a *:* rwm");
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // Default deny, with no rules or only a reset.
            (&[], C, R, 1, 3, false),
            (&[deny_all], C, R, 1, 3, false),
            (&[deny_all], B, M, 8, 0, false),
            (&[allow_all], B, R | W, 8, 0, true),
            // An exact allow; other devices and types stay denied.
            (&[deny_all, (true, "c 1:3 rwm")], C, R, 1, 3, true),
            (&[deny_all, (true, "c 1:3 rwm")], C, R | W, 1, 3, true),
            (&[deny_all, (true, "c 1:3 rwm")], C, R, 1, 5, false),
            (&[deny_all, (true, "c 1:3 rwm")], C, R, 2, 3, false),
            (&[deny_all, (true, "c 1:3 rwm")], B, R, 1, 3, false),
            // Wildcards.
            (&[deny_all, (true, "c *:* m")], C, M, 99, 7, true),
            (&[deny_all, (true, "c *:* m")], C, R, 99, 7, false),
            (&[deny_all, (true, "c *:* m")], B, M, 99, 7, false),
            (&[deny_all, (true, "c 136:* rwm")], C, R | W, 136, 42, true),
            (&[deny_all, (true, "c 136:* rwm")], C, R, 137, 42, false),
            (&[deny_all, (true, "b *:0 r")], B, R, 259, 0, true),
            (&[deny_all, (true, "b *:0 r")], B, R, 259, 1, false),
            // Access subsets: all of the access asked for must be granted.
            (&[deny_all, (true, "b 8:* r")], B, R, 8, 1, true),
            (&[deny_all, (true, "b 8:* r")], B, W, 8, 1, false),
            (&[deny_all, (true, "b 8:* r")], B, R | W, 8, 1, false),
            (&[deny_all, (true, "c 1:3 r"), (true, "c 1:3 w")], C, R | W, 1, 3, true),
            // Last match wins: a later deny of the same device...
            (&[deny_all, (true, "c 1:3 rwm"), (false, "c 1:3 rwm")], C, R, 1, 3, false),
            (&[deny_all, (true, "c 1:3 rwm"), (false, "c 1:3 w")], C, R, 1, 3, true),
            (&[deny_all, (true, "c 1:3 rwm"), (false, "c 1:3 w")], C, R | W, 1, 3, false),
            (&[deny_all, (true, "c 1:3 rwm"), (false, "c 1:3 w"), (true, "c 1:3 w")], C, W, 1, 3, true),
            // ...a later reset...
            (&[deny_all, (true, "c 1:3 rwm"), deny_all], C, R, 1, 3, false),
            (&[(false, "c 1:3 rwm"), allow_all], C, R, 1, 3, true),
            (&[deny_all, (true, "c 1:3 rwm"), (false, "a *:* m")], C, R, 1, 3, false),
            // ...and a deny after allow-all.
            (&[allow_all, (false, "c 1:3 w")], C, R, 1, 3, true),
            (&[allow_all, (false, "c 1:3 w")], C, R | W, 1, 3, false),
            (&[allow_all, (false, "c 1:* rwm")], C, M, 1, 9, false),
            (&[allow_all, (false, "c 1:* rwm")], C, M, 2, 9, true),
            (&[allow_all, (false, "c 1:3 rwm"), (true, "c 1:3 rw")], C, R, 1, 3, true),
            (&[allow_all, (false, "c 1:3 rwm"), (true, "c 1:3 rw")], C, M, 1, 3, false),
            // v1 cannot punch a hole in a wildcard exception.
            (&[deny_all, (true, "c 1:* rwm"), (false, "c 1:3 rwm")], C, R, 1, 3, true),
            (&[allow_all, (false, "c 1:* rwm"), (true, "c 1:3 rwm")], C, R, 1, 3, false),
            // A number no device can have matches nothing.
            (&[deny_all, (true, "c 4294967295:3 rwm")], C, R, 4095, 3, false),
            (&[allow_all, (false, "c 1:2147483648 rwm")], C, R, 1, 0, true),
        ];
        for (i, (list, typ, access, major, minor, want)) in cases.iter().enumerate() {
            assert_eq!(
                allows(list, *typ, *access, *major, *minor),
                *want,
                "case {i}: {list:?} type {typ} access {access} {major}:{minor}"
            );
        }
    }

    #[test]
    fn program_for_berth_default_rules() {
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "b", "major": 8, "access": "r"}]
        }))
        .unwrap();
        let list = crate::cgroups::writes::device_rules(Some(&r));
        let f = Filter::from_rules(&list).unwrap();
        let prog = f.program();
        assert!(prog.len() < 200, "{} instructions", prog.len());
        let ok = |typ, access, major, minor| run(&prog, typ, access, major, minor);
        assert!(ok(C, R | W, 1, 3)); // /dev/null
        assert!(ok(C, R, 1, 9)); // /dev/urandom
        assert!(ok(C, R | W, 136, 0)); // /dev/pts/0
        assert!(ok(C, R | W, 10, 200)); // /dev/net/tun, as runc allows
        assert!(ok(B, R, 8, 1));
        assert!(!ok(B, W, 8, 1));
        assert!(ok(C, M, 4, 1)); // mknod of anything
        assert!(!ok(C, R, 4, 1)); // but not its use
        assert!(!ok(C, R, 1, 1)); // /dev/mem
    }

    /// Random rule lists and requests: the generated program agrees with
    /// the kernel's check on the same exceptions.
    #[test]
    fn program_agrees_with_reference_on_random_rules() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let acc = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
        for _ in 0..2000 {
            let mut list = Vec::new();
            for _ in 0..next(8) {
                let num = |v: u64| if v == 3 { "*".into() } else { v.to_string() };
                let text = match next(6) {
                    0 => "a *:* rwm".to_string(),
                    t => format!(
                        "{} {}:{} {}",
                        if t % 2 == 0 { "b" } else { "c" },
                        num(next(4)),
                        num(next(4)),
                        acc[next(7) as usize]
                    ),
                };
                list.push((next(2) == 0, text));
            }
            let f = Filter::from_rules(&list).unwrap();
            let prog = f.program();
            for typ in [B, C] {
                for access in 1..=7 {
                    for major in 0..4 {
                        for minor in 0..4 {
                            assert_eq!(
                                run(&prog, typ, access, major, minor),
                                reference(&f, typ, access, major, minor),
                                "{list:?}: type {typ} access {access} {major}:{minor}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Tests below need root and a kernel; outside CI they are skipped.
    fn can_run_kernel_test(what: &str) -> bool {
        let why = if !nix::unistd::Uid::effective().is_root() {
            "it needs root"
        } else {
            return true;
        };
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{what}: {why}");
        }
        eprintln!("skipping {what}: {why}");
        false
    }

    fn mount_of(fs_type: &str, want: impl Fn(&str) -> bool) -> Option<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        crate::rootfs::mountinfo::parse(&info)
            .into_iter()
            .find(|e| e.fs_type == fs_type && want(&e.mount_point))
            .map(|e| PathBuf::from(e.mount_point))
    }

    fn unique(prefix: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}-{}-{n}", std::process::id())
    }

    fn remove_cgroup(dir: &Path) {
        for _ in 0..200 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => return,
            }
        }
    }

    /// Loads and attaches a real filter, then checks it from a process in
    /// the cgroup: /dev/null (c 1:3) opens, /dev/zero (c 1:5) gets EPERM.
    #[test]
    fn kernel_enforces_attached_filter() {
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;

        if !can_run_kernel_test("kernel_enforces_attached_filter") {
            return;
        }
        let root = mount_of("cgroup2", |p| p == "/sys/fs/cgroup/unified")
            .or_else(|| mount_of("cgroup2", |p| p.starts_with("/sys/fs/cgroup")))
            .expect("no cgroup2 hierarchy is mounted under /sys/fs/cgroup");
        let dir = root.join(unique("berth-bpf-test"));
        std::fs::create_dir(&dir).unwrap();
        let attached =
            attach_device_filter(&dir, &rules(&[(false, "a *:* rwm"), (true, "c 1:3 rwm")]));
        // The verifier also accepts the other shapes of block: an access
        // subset, a wildcard, and a default-allow program.
        for list in [
            &[(false, "a *:* rwm"), (true, "c 1:5 r"), (true, "b *:* m")][..],
            &[(true, "a *:* rwm"), (false, "c 1:* w")][..],
        ] {
            let prog = Filter::from_rules(&rules(list)).unwrap().program();
            if let Err(e) = load(&prog) {
                remove_cgroup(&dir);
                panic!("{list:?}: {e}");
            }
        }
        if let Err(e) = attached {
            remove_cgroup(&dir);
            panic!("{e}");
        }
        // Everything the child needs is made before fork: it only calls
        // open, write, close and _exit.
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
        let null = c"/dev/null";
        let zero = c"/dev/zero";
        // SAFETY: the child only makes async-signal-safe libc calls on
        // memory prepared before the fork, and ends with _exit.
        let child = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                // SAFETY: open/write/close/_exit with valid NUL-terminated
                // paths and a 1-byte buffer; errno read from this thread's
                // own location.
                unsafe {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        libc::_exit(10);
                    }
                    libc::close(fd);
                    let fd = libc::open(null.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        libc::_exit(11);
                    }
                    libc::close(fd);
                    let fd = libc::open(zero.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd >= 0 {
                        libc::_exit(12);
                    }
                    if *libc::__errno_location() != libc::EPERM {
                        libc::_exit(13);
                    }
                    libc::_exit(0);
                }
            }
            ForkResult::Parent { child } => child,
        };
        let status = waitpid(child, None);
        remove_cgroup(&dir);
        let meaning = |code| match code {
            10 => "could not join the cgroup",
            11 => "open /dev/null was refused",
            12 => "open /dev/zero succeeded",
            13 => "open /dev/zero failed, but not with EPERM",
            _ => "?",
        };
        match status.unwrap() {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(_, code) => panic!("child: {}", meaning(code)),
            other => panic!("child: {other:?}"),
        }
    }

    /// The emulation against the real thing: the same writes to a v1
    /// devices cgroup leave the same exceptions in `devices.list` (which
    /// lists exceptions only while the default is deny).
    #[test]
    fn kernel_v1_devices_list_agrees_with_emulation() {
        if !can_run_kernel_test("kernel_v1_devices_list_agrees_with_emulation") {
            return;
        }
        let Some(root) = mount_of("cgroup", |p| p == "/sys/fs/cgroup/devices") else {
            eprintln!("skipping: no v1 devices controller on this host");
            return;
        };
        let deny_all = (false, "a *:* rwm");
        let cases: &[&[(bool, &str)]] = &[
            &[
                deny_all,
                (true, "c 1:3 r"),
                (true, "c 1:3 w"),
                (true, "b 8:* m"),
            ],
            &[deny_all, (true, "c 1:* rwm"), (false, "c 1:3 rwm")],
            &[
                deny_all,
                (true, "c 1:3 rwm"),
                (false, "c 1:3 w"),
                (true, "c *:* m"),
            ],
            &[
                deny_all,
                (true, "c 1:3 rw"),
                (false, "c 1:3 rw"),
                (true, "c 5:1 m"),
            ],
            &[
                (true, "a *:* rwm"),
                (false, "c 1:3 rwm"),
                deny_all,
                (true, "c 4:1 r"),
            ],
        ];
        let show = |e: &Exception| {
            let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
            let acc: String = [(R, 'r'), (W, 'w'), (M, 'm')]
                .iter()
                .filter(|(b, _)| e.access & b != 0)
                .map(|(_, c)| c)
                .collect();
            let t = if e.typ == DevType::Block { 'b' } else { 'c' };
            format!("{t} {}:{} {acc}", num(e.major), num(e.minor))
        };
        for list in cases {
            let dir = root.join(unique("berth-bpf-v1-test"));
            std::fs::create_dir(&dir).unwrap();
            for (allow, rule) in *list {
                let file = if *allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                std::fs::write(dir.join(file), rule).unwrap();
            }
            let kernel = std::fs::read_to_string(dir.join("devices.list")).unwrap();
            remove_cgroup(&dir);
            let f = Filter::from_rules(&rules(list)).unwrap();
            assert!(!f.default_allow);
            let ours: Vec<String> = f.exceptions.iter().map(show).collect();
            let theirs: Vec<&str> = kernel.lines().collect();
            assert_eq!(ours, theirs, "{list:?}");
        }
    }
}
