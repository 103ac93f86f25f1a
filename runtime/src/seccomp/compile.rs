//! A profile as a program. One section per architecture (selected by the
//! audit arch and, for x86_64 and x32, the x32 bit); in each a linear
//! dispatch on the syscall number to that syscall's rules, the most
//! specific first, then the default action, except for calls newer than
//! any the profile names (see [`newer_calls_get_enosys`]). Calls of an
//! architecture the profile does not name are killed, as libseccomp's
//! filters do.

use super::arch::{self, Arch, X32_BIT};
use super::bpf::{self, insn, Insn, AND, JA, JEQ, JGE, JGT, JSET, LD_ABS, RET};
use super::SeccompError;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompOperator as Op,
};

const KILL_PROCESS: u32 = 0x8000_0000;
const ENOSYS: u32 = libc::ENOSYS as u32;
/// BPF_MAXINSNS: the kernel refuses longer programs.
const MAX_INSNS: usize = 4096;

fn invalid(what: String) -> SeccompError {
    SeccompError::Invalid(what)
}

/// One rule: every condition must hold (AND) for the action to apply.
struct Rule<'a> {
    conds: Vec<&'a LinuxSeccompArg>,
    action: u32,
}

pub fn program(s: &LinuxSeccomp) -> Result<Vec<Insn>, SeccompError> {
    let default = s.default_action().as_u32(s.default_errno_ret());
    let enosys = newer_calls_get_enosys(s.default_action());
    let mut prog = Vec::new();
    for a in arch::selected(s.architectures().as_deref().unwrap_or(&[]))? {
        section(&mut prog, a, &rules_of(s, a)?, default, enosys);
    }
    prog.push(insn(RET, KILL_PROCESS, 0, 0));
    if prog.len() > MAX_INSNS {
        return Err(invalid(format!(
            "the profile compiles to {} instructions, more than the kernel's {MAX_INSNS}",
            prog.len()
        )));
    }
    Ok(prog)
}

/// Whether a call newer than the newest one the profile names gets ENOSYS
/// instead of the default action. A profile that refuses what it does not
/// list was written before such calls existed: libc (and berth itself)
/// falls back on ENOSYS, as for an older kernel, but gives up on EPERM
/// (glibc's clone3 in posix_spawn, for one). runc does the same, except
/// for defaults that let the call through anyway (a tracer, too, is
/// expected to handle new calls).
fn newer_calls_get_enosys(default: Action) -> bool {
    !matches!(
        default,
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
    )
}

/// The rules of each syscall `a` knows, in the order the profile first
/// names the syscall; names this arch lacks are skipped, as runc does.
fn rules_of(s: &LinuxSeccomp, a: Arch) -> Result<Vec<(u32, Vec<Rule<'_>>)>, SeccompError> {
    let mut out: Vec<(u32, Vec<Rule>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let args = sc.args().as_deref().unwrap_or(&[]);
        for (j, arg) in args.iter().enumerate() {
            if arg.index() >= 6 {
                return Err(invalid(format!(
                    "syscalls[{i}].args[{j}].index: {} is not below 6",
                    arg.index()
                )));
            }
        }
        let action = sc.action().as_u32(sc.errno_ret());
        for nr in sc.names().iter().filter_map(|n| a.number(n)) {
            let at = *index.entry(nr).or_insert_with(|| {
                out.push((nr, Vec::new()));
                out.len() - 1
            });
            out[at].1.extend(split(args, action));
        }
    }
    for (_, rules) in &mut out {
        rules.sort_by_key(|r| std::cmp::Reverse(r.conds.len()));
    }
    Ok(out)
}

/// runc's reading of a rule: its conditions are ANDed, unless two test the
/// same argument, when each condition is a rule of its own (ORed).
fn split(args: &[LinuxSeccompArg], action: u32) -> Vec<Rule<'_>> {
    let mut seen = [false; 6];
    let repeats = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    match repeats {
        true => args
            .iter()
            .map(|a| Rule {
                conds: vec![a],
                action,
            })
            .collect(),
        false => vec![Rule {
            conds: args.iter().collect(),
            action,
        }],
    }
}

fn section(prog: &mut Vec<Insn>, a: Arch, rules: &[(u32, Vec<Rule>)], default: u32, enosys: bool) {
    let mut leave = Vec::new();
    prog.push(insn(LD_ABS, bpf::ARCH, 0, 0));
    prog.push(insn(JEQ, a.audit(), 1, 0));
    leave.push(prog.len());
    prog.push(insn(JA, 0, 0, 0));
    prog.push(insn(LD_ABS, bpf::NR, 0, 0));
    if let Some(set) = a.x32_bit() {
        // Stay when the x32 bit is as this section wants it.
        let (jt, jf) = if set { (1, 0) } else { (0, 1) };
        prog.push(insn(JSET, X32_BIT, jt, jf));
        leave.push(prog.len());
        prog.push(insn(JA, 0, 0, 0));
    }
    for (nr, rs) in rules {
        syscall_block(prog, *nr, rs, default);
    }
    if let Some(newest) = rules.iter().map(|(nr, _)| *nr).max().filter(|_| enosys) {
        prog.push(insn(JGT, newest, 0, 1));
        prog.push(insn(RET, Action::ScmpActErrno.as_u32(Some(ENOSYS)), 0, 0));
    }
    prog.push(insn(RET, default, 0, 0));
    let end = prog.len();
    for at in leave {
        prog[at].k = (end - at - 1) as u32;
    }
}

/// `if nr == N { rules...; default }`, skipped for any other number.
fn syscall_block(prog: &mut Vec<Insn>, nr: u32, rules: &[Rule], default: u32) {
    let mut body = Vec::new();
    for r in rules {
        rule(&mut body, r);
        if r.conds.is_empty() {
            break; // nothing after an unconditional rule is reachable
        }
    }
    if rules.last().is_none_or(|r| !r.conds.is_empty()) {
        body.push(insn(RET, default, 0, 0));
    }
    match u8::try_from(body.len()) {
        Ok(n) => prog.push(insn(JEQ, nr, 0, n)),
        Err(_) => {
            prog.push(insn(JEQ, nr, 1, 0));
            prog.push(insn(JA, body.len() as u32, 0, 0));
        }
    }
    prog.extend(body);
}

/// Where a conditional jump goes: on to a later instruction of the same
/// condition, or out of the rule (to the next one).
#[derive(Clone, Copy)]
enum To {
    Skip(u8),
    Fail,
}

struct RuleAsm<'a> {
    body: &'a mut Vec<Insn>,
    fails: Vec<(usize, bool)>,
}

impl RuleAsm<'_> {
    fn load(&mut self, off: u32) {
        self.body.push(insn(LD_ABS, off, 0, 0));
    }
    fn and(&mut self, k: u32) {
        self.body.push(insn(AND, k, 0, 0));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        let at = self.body.len();
        let mut field = |to: To, is_jt: bool| match to {
            To::Skip(n) => n,
            To::Fail => {
                self.fails.push((at, is_jt));
                0
            }
        };
        let (t, f) = (field(jt, true), field(jf, false));
        self.body.push(insn(code, k, t, f));
    }
}

/// The rule's conditions, each falling out to the rule's end when it does
/// not hold, then its action.
fn rule(body: &mut Vec<Insn>, r: &Rule) {
    let mut asm = RuleAsm {
        body,
        fails: Vec::new(),
    };
    for c in &r.conds {
        condition(&mut asm, c);
    }
    asm.body.push(insn(RET, r.action, 0, 0));
    let end = asm.body.len();
    for (at, is_jt) in asm.fails {
        // A rule is at most 6 conditions of 6 instructions: always in reach.
        let off = (end - at - 1) as u8;
        match is_jt {
            true => asm.body[at].jt = off,
            false => asm.body[at].jf = off,
        }
    }
}

/// One 64-bit comparison, high word first, in 32-bit BPF.
fn condition(asm: &mut RuleAsm, c: &LinuxSeccompArg) {
    use To::{Fail, Skip};
    let lo = bpf::arg_lo(c.index());
    let hi = lo + 4;
    let (vh, vl) = ((c.value() >> 32) as u32, c.value() as u32);
    match c.op() {
        Op::ScmpCmpEq => {
            asm.load(hi);
            asm.jump(JEQ, vh, Skip(0), Fail);
            asm.load(lo);
            asm.jump(JEQ, vl, Skip(0), Fail);
        }
        Op::ScmpCmpNe => {
            asm.load(hi);
            asm.jump(JEQ, vh, Skip(0), Skip(2));
            asm.load(lo);
            asm.jump(JEQ, vl, Fail, Skip(0));
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            let low = if c.op() == Op::ScmpCmpGt { JGT } else { JGE };
            asm.load(hi);
            asm.jump(JGT, vh, Skip(3), Skip(0));
            asm.jump(JEQ, vh, Skip(0), Fail);
            asm.load(lo);
            asm.jump(low, vl, Skip(0), Fail);
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            let low = if c.op() == Op::ScmpCmpLt { JGE } else { JGT };
            asm.load(hi);
            asm.jump(JGT, vh, Fail, Skip(0));
            asm.jump(JEQ, vh, Skip(0), Skip(2));
            asm.load(lo);
            asm.jump(low, vl, Fail, Skip(0));
        }
        Op::ScmpCmpMaskedEq => {
            // The runtime spec: `value` is the mask, `valueTwo` the result.
            let mask = c.value();
            let want = c.value_two().unwrap_or(0);
            asm.load(hi);
            asm.and((mask >> 32) as u32);
            asm.jump(JEQ, (want >> 32) as u32, Skip(0), Fail);
            asm.load(lo);
            asm.and(mask as u32);
            asm.jump(JEQ, want as u32, Skip(0), Fail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf::{run, Data};

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS_RET: u32 = 0x0005_0026;
    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    const NR_READ: i32 = 0; // x86_64
    const NR_GETPID: i32 = 39; // x86_64
    const NR_GETPID_I386: i32 = 20;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("a LinuxSeccomp")
    }

    fn call(prog: &[Insn], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
        run(prog, &Data { nr, arch, args })
    }

    /// The action for getpid(arg0) on x86_64 under one rule with `op`.
    fn with_op(op: &str, value: u64, arg0: u64) -> u32 {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": value, "op": op}]}]
        }));
        call(
            &program(&p).unwrap(),
            X86_64,
            NR_GETPID,
            [arg0, 0, 0, 0, 0, 0],
        )
    }

    #[test]
    fn every_operator_compares_64_bits() {
        let v: u64 = 0x1_0000_0005;
        // Around v, and values whose high and low words disagree with v's.
        let args = [
            0,
            v - 1,
            v,
            v + 1,
            0x0_ffff_ffff,
            0x2_0000_0000,
            0x1_ffff_ffff,
            u64::MAX,
        ];
        type Holds = fn(u64, u64) -> bool;
        let ops: [(&str, Holds); 6] = [
            ("SCMP_CMP_EQ", |a, v| a == v),
            ("SCMP_CMP_NE", |a, v| a != v),
            ("SCMP_CMP_LT", |a, v| a < v),
            ("SCMP_CMP_LE", |a, v| a <= v),
            ("SCMP_CMP_GT", |a, v| a > v),
            ("SCMP_CMP_GE", |a, v| a >= v),
        ];
        for (op, holds) in ops {
            for a in args {
                let want = if holds(a, v) { ALLOW } else { EPERM };
                assert_eq!(with_op(op, v, a), want, "{op} {a:#x} vs {v:#x}");
            }
        }
    }

    #[test]
    fn masked_eq_takes_the_mask_from_value() {
        // Docker's clone rule: no namespace flag may be set.
        let rule = |arg0: u64| {
            let p = profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]}]
            }));
            call(
                &program(&p).unwrap(),
                X86_64,
                NR_GETPID,
                [arg0, 0, 0, 0, 0, 0],
            )
        };
        assert_eq!(rule(0x11), ALLOW); // SIGCHLD only
        assert_eq!(rule(0x1000_0000), EPERM); // CLONE_NEWUSER
        assert_eq!(rule(0x1_0000_0011), ALLOW); // high bits are outside the mask
        let two = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 1, "value": 0xff00_0000_00ffu64, "valueTwo": 0x1200_0000_0034u64,
                          "op": "SCMP_CMP_MASKED_EQ"}]}]
        }));
        let prog = program(&two).unwrap();
        assert_eq!(
            call(&prog, X86_64, NR_GETPID, [0, 0x12ab_cdef_9934, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            call(&prog, X86_64, NR_GETPID, [0, 0x13ab_cdef_9934, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            call(&prog, X86_64, NR_GETPID, [0, 0x12ab_cdef_9935, 0, 0, 0, 0]),
            EPERM
        );
    }

    #[test]
    fn every_action_has_its_return_value() {
        let actions = [
            ("SCMP_ACT_ALLOW", None, ALLOW),
            ("SCMP_ACT_ERRNO", Some(38), 0x0005_0026),
            ("SCMP_ACT_ERRNO", None, EPERM),
            ("SCMP_ACT_KILL", None, 0),
            ("SCMP_ACT_KILL_THREAD", None, 0),
            ("SCMP_ACT_KILL_PROCESS", None, KILL_PROCESS),
            ("SCMP_ACT_TRAP", None, 0x0003_0000),
            ("SCMP_ACT_TRACE", Some(7), 0x7ff0_0007),
            ("SCMP_ACT_LOG", None, 0x7ffc_0000),
            ("SCMP_ACT_NOTIFY", None, 0x7fc0_0000),
        ];
        for (action, errno, want) in actions {
            let mut rule = serde_json::json!({"names": ["getpid"], "action": action});
            if let Some(e) = errno {
                rule["errnoRet"] = e.into();
            }
            let p =
                profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}));
            let prog = program(&p).unwrap();
            assert_eq!(call(&prog, X86_64, NR_GETPID, [0; 6]), want, "{action}");
            assert_eq!(
                call(&prog, X86_64, NR_READ, [0; 6]),
                ALLOW,
                "{action}: read"
            );
        }
    }

    #[test]
    fn default_action_takes_default_errno_ret() {
        let p =
            profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}));
        assert_eq!(
            call(&program(&p).unwrap(), X86_64, NR_READ, [0; 6]),
            0x0005_0026
        );
    }

    #[test]
    fn compat_arches_get_their_own_numbers_and_others_are_killed() {
        let allow_getpid = |arches: serde_json::Value| {
            let p = profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO", "architectures": arches,
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
            }));
            program(&p).unwrap()
        };
        let native = allow_getpid(serde_json::json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(call(&native, X86_64, NR_GETPID, [0; 6]), ALLOW);
        // An int 0x80 call, or an x32 one, when the profile names only x86_64.
        assert_eq!(call(&native, I386, NR_GETPID_I386, [0; 6]), KILL_PROCESS);
        assert_eq!(
            call(&native, X86_64, NR_GETPID | X32_BIT as i32, [0; 6]),
            KILL_PROCESS
        );
        let all = allow_getpid(serde_json::json!([
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32"
        ]));
        assert_eq!(call(&all, I386, NR_GETPID_I386, [0; 6]), ALLOW);
        // i386's 3 is read (older than its getpid): not allowed.
        assert_eq!(call(&all, I386, 3, [0; 6]), EPERM);
        assert_eq!(
            call(&all, X86_64, NR_GETPID | X32_BIT as i32, [0; 6]),
            ALLOW
        );
        assert_eq!(call(&all, X86_64, NR_READ | X32_BIT as i32, [0; 6]), EPERM);
        assert_eq!(call(&all, 0xc000_00b7, 172, [0; 6]), KILL_PROCESS); // aarch64
    }

    #[test]
    fn unknown_names_are_skipped_and_the_rest_apply() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["no_such_call", "getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        assert_eq!(
            call(&program(&p).unwrap(), X86_64, NR_GETPID, [0; 6]),
            ALLOW
        );
    }

    #[test]
    fn conditions_and_together_unless_they_test_one_argument() {
        let p = |args: serde_json::Value| {
            program(&profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": args}]
            })))
            .unwrap()
        };
        let and = p(serde_json::json!([
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}
        ]));
        assert_eq!(call(&and, X86_64, NR_GETPID, [1, 2, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&and, X86_64, NR_GETPID, [1, 3, 0, 0, 0, 0]), EPERM);
        let or = p(serde_json::json!([
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}
        ]));
        assert_eq!(call(&or, X86_64, NR_GETPID, [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&or, X86_64, NR_GETPID, [3, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn the_more_specific_rule_wins() {
        // podman's socket rules: refuse NETLINK_AUDIT, allow the rest.
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                          {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]}
            ]
        }));
        let prog = program(&p).unwrap();
        let socket = 41;
        assert_eq!(
            call(&prog, X86_64, socket, [16, 3, 9, 0, 0, 0]),
            0x0005_0016
        );
        assert_eq!(call(&prog, X86_64, socket, [16, 3, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&prog, X86_64, socket, [2, 1, 9, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn bad_argument_index_is_refused_naming_it() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }));
        let e = program(&p).unwrap_err().to_string();
        assert!(e.contains("syscalls[0].args[0].index"), "{e}");
    }

    #[test]
    fn a_long_allow_list_stays_in_jump_range() {
        // Docker's default profile allows some 350 calls in one rule.
        let names: Vec<String> = syscalls::x86_64::Sysno::iter()
            .map(|s| s.name().to_string())
            .collect();
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        }));
        let prog = program(&p).unwrap();
        assert!(prog.len() <= MAX_INSNS, "{}", prog.len());
        for nr in [0, 39, 200, 300] {
            assert_eq!(call(&prog, X86_64, nr, [0; 6]), ALLOW, "{nr}");
        }
        // Newer than every call the profile names.
        assert_eq!(call(&prog, X86_64, 100_000, [0; 6]), ENOSYS_RET);
    }

    #[test]
    fn calls_newer_than_the_profile_get_enosys_unless_the_default_allows() {
        let with_default = |default: &str| {
            program(&profile(serde_json::json!({
                "defaultAction": default,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            })))
            .unwrap()
        };
        let (nr_sendfile, nr_mkdir, nr_rmdir) = (40, 83, 84);
        let refusing = with_default("SCMP_ACT_ERRNO");
        for (nr, want) in [
            (nr_sendfile, EPERM),
            (nr_mkdir, EPERM),
            (nr_rmdir, ENOSYS_RET),
        ] {
            assert_eq!(call(&refusing, X86_64, nr, [0; 6]), want, "{nr}");
        }
        // i386 numbers: mkdir is 39, the newest named; rename is 38.
        assert_eq!(call(&refusing, I386, 38, [0; 6]), EPERM);
        assert_eq!(call(&refusing, I386, 40, [0; 6]), ENOSYS_RET);
        let killing = with_default("SCMP_ACT_KILL_PROCESS");
        assert_eq!(call(&killing, X86_64, nr_rmdir, [0; 6]), ENOSYS_RET);
        assert_eq!(call(&killing, X86_64, nr_sendfile, [0; 6]), KILL_PROCESS);
        for (default, ret) in [("SCMP_ACT_ALLOW", ALLOW), ("SCMP_ACT_LOG", 0x7ffc_0000)] {
            let prog = with_default(default);
            assert_eq!(call(&prog, X86_64, nr_rmdir, [0; 6]), ret, "{default}");
        }
    }
}
