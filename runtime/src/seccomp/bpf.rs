//! Classic BPF, as seccomp(2) runs it: the few instructions the compiler
//! emits, and (for tests) an interpreter of exactly those.

/// One `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT: u16 = 0x25;
pub const JGE: u16 = 0x35;
pub const JSET: u16 = 0x45;
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const RET: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets into `struct seccomp_data`.
pub const NR: u32 = 0;
pub const ARCH: u32 = 4;
/// The low (little-endian) half of argument `i`; the high half is at +4.
pub fn arg_lo(i: usize) -> u32 {
    16 + 8 * i as u32
}

pub fn insn(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// What the kernel hands a filter: `struct seccomp_data`.
#[cfg(any(test, fuzzing))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Runs `prog` on `d` and returns the action, checking as the kernel's
/// verifier would that every jump lands inside the program.
#[cfg(any(test, fuzzing))]
pub fn run(prog: &[Insn], d: &Data) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            NR => d.nr as u32,
            ARCH => d.arch,
            o if (16..64).contains(&o) => {
                let a = d.args[(o as usize - 16) / 8];
                if o % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load at offset {o}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog
            .get(pc)
            .copied()
            .unwrap_or_else(|| panic!("pc {pc} past the end"));
        let cond = |taken: bool| pc + 1 + if taken { i.jt as usize } else { i.jf as usize };
        pc = match i.code {
            LD_ABS => {
                acc = word(i.k);
                pc + 1
            }
            AND => {
                acc &= i.k;
                pc + 1
            }
            JEQ => cond(acc == i.k),
            JGT => cond(acc > i.k),
            JGE => cond(acc >= i.k),
            JSET => cond(acc & i.k != 0),
            JA => pc + 1 + i.k as usize,
            RET => return i.k,
            c => panic!("opcode {c:#x}"),
        };
    }
}
