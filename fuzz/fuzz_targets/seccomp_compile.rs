//! Profiles built from fuzzer input out of the vocabulary real profiles
//! use (every action, operator and x86 arch, known and unknown syscall
//! names, argument indexes past the end). Whatever compiles must run on
//! the interpreter without leaving the program, give the default action
//! to a call no rule names, and kill calls of an arch it does not cover.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHES: [&str; 4] = [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
];
const NAMES: [&str; 12] = [
    "read",
    "write",
    "openat",
    "mkdir",
    "mkdirat",
    "clone",
    "socket",
    "personality",
    "sendmsg",
    "ptrace",
    "socketcall",
    "no_such_call",
];

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const AUDIT_AARCH64: u32 = 0xc000_00b7;
const KILL_PROCESS: u32 = 0x8000_0000;
/// No x86_64 syscall has this number.
const UNNAMED: i32 = 1023;

fn pick<'a>(u: &mut Unstructured, from: &[&'a str]) -> Result<&'a str> {
    u.choose(from).copied()
}

fn arg(u: &mut Unstructured) -> Result<Value> {
    Ok(json!({
        "index": u.int_in_range(0..=7u32)?,
        "value": u.arbitrary::<u64>()?,
        "valueTwo": u.arbitrary::<u64>()?,
        "op": pick(u, &OPS)?,
    }))
}

fn rule(u: &mut Unstructured) -> Result<Value> {
    let names: Vec<&str> = (0..u.int_in_range(1..=3)?)
        .map(|_| pick(u, &NAMES))
        .collect::<Result<_>>()?;
    let args: Vec<Value> = (0..u.int_in_range(0..=3)?)
        .map(|_| arg(u))
        .collect::<Result<_>>()?;
    Ok(json!({
        "names": names,
        "action": pick(u, &ACTIONS)?,
        "errnoRet": u.int_in_range(0..=4095u32)?,
        "args": args,
    }))
}

fn profile(u: &mut Unstructured) -> Result<Value> {
    let arches: Vec<&str> = (0..u.int_in_range(0..=3)?)
        .map(|_| pick(u, &ARCHES))
        .collect::<Result<_>>()?;
    let rules: Vec<Value> = (0..u.int_in_range(0..=12)?)
        .map(|_| rule(u))
        .collect::<Result<_>>()?;
    let mut p = json!({
        "defaultAction": pick(u, &ACTIONS)?,
        "architectures": arches,
        "syscalls": rules,
    });
    if u.arbitrary()? {
        p["defaultErrnoRet"] = u.int_in_range(0..=4095u32)?.into();
    }
    if u.arbitrary()? {
        p["listenerPath"] = "/run/agent.sock".into();
    }
    Ok(p)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(p) = profile(&mut u) else { return };
    let s: LinuxSeccomp = serde_json::from_value(p).expect("the generator writes profiles");
    let Ok(f) = berth::seccomp::compile(&s) else {
        return;
    };
    let args = [0u64; 6];
    let default = s.default_action().as_u32(s.default_errno_ret());
    assert_eq!(f.verdict(AUDIT_X86_64, UNNAMED, args), default);
    assert_eq!(f.verdict(AUDIT_AARCH64, 0, args), KILL_PROCESS);
    // Every call the fuzzer makes up must stay inside the program.
    while let (Ok(arch), Ok(nr), Ok(args)) = (
        u.choose(&[AUDIT_X86_64, AUDIT_I386]),
        u.int_in_range(0..=600),
        u.arbitrary::<[u64; 6]>(),
    ) {
        f.verdict(*arch, nr, args);
        if u.is_empty() {
            break;
        }
    }
});
