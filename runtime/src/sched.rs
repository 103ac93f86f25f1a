//! How the kernel schedules a container's processes: `process.scheduler`
//! (sched_setattr), `process.ioPriority` (ioprio_set), both applied by
//! init and by `exec` before the capabilities that allow them are dropped,
//! and `process.execCPUAffinity`, which only an exec'd process gets (the
//! spec leaves init alone): `initial` before it joins the container's
//! cgroups, `final` after.

use crate::error::{Context, OsError};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler,
};

/// The fields that are wrong in `process`'s scheduling, as runc's
/// validator names them: (field, why).
pub fn check(process: &Process) -> Result<(), (String, String)> {
    let bad = |field: &str, why: String| Err((format!("process.{field}"), why));
    if let Some(s) = process.scheduler() {
        if let Some(nice) = s.nice().filter(|n| !(-20..=19).contains(n)) {
            return bad("scheduler.nice", format!("{nice} is not in -20..19"));
        }
        let realtime = matches!(
            s.policy(),
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
        );
        if s.priority().is_some_and(|p| p != 0) && !realtime {
            return bad(
                "scheduler.priority",
                format!("is only for SCHED_FIFO and SCHED_RR, not {}", s.policy()),
            );
        }
        let deadline_fields = [s.runtime(), s.deadline(), s.period()];
        if *s.policy() != LinuxSchedulerPolicy::SchedDeadline
            && deadline_fields.iter().any(|v| v.is_some_and(|v| v != 0))
        {
            return bad(
                "scheduler",
                format!(
                    "runtime, deadline and period are only for SCHED_DEADLINE, not {}",
                    s.policy()
                ),
            );
        }
    }
    if let Some(p) = process.io_priority() {
        if !(0..=7).contains(&p.priority()) {
            return bad(
                "ioPriority.priority",
                format!("{} is not in 0..7", p.priority()),
            );
        }
    }
    Ok(())
}

/// oci-spec 0.10 spells two of the spec's scheduler flags its own way
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`) and refuses the
/// spec's: give it its spelling.
pub fn respell_flags(process: &mut serde_json::Value) {
    let flags = process.pointer_mut("/scheduler/flags");
    for flag in flags.and_then(|f| f.as_array_mut()).into_iter().flatten() {
        let ours = match flag.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *flag = ours.into();
    }
}

/// Applies `process.scheduler` and `process.ioPriority` to the calling
/// process; exec and fork keep them.
pub fn apply(process: &Process) -> Result<(), OsError> {
    if let Some(s) = process.scheduler() {
        set_scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        set_io_priority(p)?;
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (sched_setattr(2)), with the
/// utilization clamps.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn set_scheduler(s: &Scheduler) -> Result<(), OsError> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(*s.policy()),
        flags: s.flags().iter().flatten().map(|f| flag_bit(*f)).sum(),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: attr is a sched_attr of the size it declares, alive for the
    // call; pid 0 is the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(r)
        .map(drop)
        .context(format!("set process.scheduler ({})", s.policy()))
}

fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        // Reserved by the kernel, never implemented: sched_setattr says
        // EINVAL, which the error names.
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    }
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

fn set_io_priority(p: &LinuxIOPriority) -> Result<(), OsError> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: i64 = 13;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let ioprio = (class << IOPRIO_CLASS_SHIFT) | p.priority();
    // SAFETY: ioprio_set takes plain integers; 0 is the calling process.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
    nix::errno::Errno::result(r)
        .map(drop)
        .context(format!("set process.ioPriority ({})", p.class()))
}

/// Pins the calling process to `cpus` (a list such as `0-3,7`, which the
/// spec's parser has checked), naming `field` when the kernel refuses it.
pub fn set_cpus(cpus: &str, field: &str) -> Result<(), OsError> {
    let mut set = nix::sched::CpuSet::new();
    let ranges = numbers(cpus)
        .map_err(|_| OsError::new(format!("{field}: {cpus:?}"), nix::errno::Errno::EINVAL))?;
    for (first, last) in ranges {
        for cpu in first..=last {
            set.set(cpu).context(format!("{field}: cpu {cpu}"))?;
        }
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .context(format!("set {field} to {cpus}"))
}

/// The ranges of a list such as `0-3,7` (CPUs, NUMA nodes), first to last
/// inclusive; Err names the range that is not one.
pub(crate) fn numbers(list: &str) -> Result<Vec<(usize, usize)>, String> {
    let range = |r: &str| -> Option<(usize, usize)> {
        let (first, last) = r.split_once('-').unwrap_or((r, r));
        let (first, last) = (first.parse().ok()?, last.parse().ok()?);
        (first <= last).then_some((first, last))
    };
    let bad = |r: &str| format!("{list:?}: {r:?} is not a number or a range of them");
    let ranges = list.split(',').filter(|r| !r.is_empty());
    ranges.map(|r| range(r).ok_or_else(|| bad(r))).collect()
}
