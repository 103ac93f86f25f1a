//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient scope that systemd creates and owns, asked for over
//! D-Bus with the container's first process in it. Resource limits go in
//! as unit properties too, so a `systemctl daemon-reload` keeps them.

use super::{CgroupError, Version};
use crate::dbus::{Call, Connection, DbusError, Value, Writer};
use oci_spec::runtime::LinuxResources;
use std::path::Path;
use std::time::{Duration, Instant};

const UNLIMITED: u64 = u64::MAX;

/// The systemd manager a container's scope belongs to: the system's, or a
/// rootless caller's own user manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    System,
    User,
}

/// Unit properties for `r` (only those systemd has a name for).
pub fn properties(r: Option<&LinuxResources>, version: Version) -> Vec<(&'static str, Value)> {
    let mut p = Vec::new();
    let Some(r) = r else { return p };
    let limit = |v: i64| Value::U64(if v < 0 { UNLIMITED } else { v as u64 });
    if let Some(m) = r.memory() {
        let name = if version == Version::V2 {
            "MemoryMax"
        } else {
            "MemoryLimit"
        };
        if let Some(l) = m.limit() {
            p.push((name, limit(l)));
        }
        if let (Version::V2, Some(l)) = (version, m.reservation()) {
            p.push(("MemoryLow", limit(l)));
        }
    }
    if let Some(c) = r.cpu() {
        match (version, c.shares()) {
            (Version::V2, Some(s)) => {
                p.push(("CPUWeight", Value::U64(super::convert::shares_to_weight(s))))
            }
            (Version::V1, Some(s)) => p.push(("CPUShares", Value::U64(s))),
            _ => {}
        }
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            let period = c.period().unwrap_or(100_000).max(1);
            // systemd counts quota per second; round up to whole 10ms as systemd does.
            let per_sec = (q as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000;
            p.push(("CPUQuotaPerSecUSec", Value::U64(per_sec)));
        }
    }
    // The scope starts around init's first stage, which has init still
    // to fork: a limit of 1 is written to pids.max after that alone.
    if let Some(l) = r.pids().map(|p| p.limit()).filter(|l| *l != 1) {
        p.push((
            "TasksMax",
            Value::U64(if l > 0 { l as u64 } else { UNLIMITED }),
        ));
    }
    p
}

/// Starts the scope at `path` (`/system.slice/<prefix>-<name>.scope`)
/// holding `pid`, and waits until systemd has moved the process in.
pub fn start_scope(
    path: &Path,
    pid: i32,
    r: Option<&LinuxResources>,
    version: Version,
    manager: Manager,
) -> Result<(), CgroupError> {
    let unit = unit_of(path)?;
    let slice = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("system.slice");
    let description = format!("berth container {unit}");
    let mut props = vec![
        ("Description", Value::Str(description)),
        ("Slice", Value::Str(slice.to_string())),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::ArrU32(vec![pid as u32])),
        ("DefaultDependencies", Value::Bool(false)),
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        ("TasksAccounting", Value::Bool(true)),
    ];
    props.extend(properties(r, version));
    let mut body = Writer::default();
    body.str(unit);
    body.str("replace");
    body.properties(&props);
    body.array(8, |_| {});
    let mut systemd = Connection::systemd(manager == Manager::User)?;
    let start = || manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))");
    match systemd.call(&start(), &body.buf) {
        // A scope whose processes were killed stays loaded, failed, until
        // reset: a container of the same name before it (runc too resets
        // it and tries once more).
        Err(DbusError::Remote { name, .. }) if name == UNIT_EXISTS => {
            let _ = systemd.call(&manager_call("ResetFailedUnit", "s"), &unit_arg(unit).buf);
            systemd.call(&start(), &body.buf)?;
        }
        r => r?,
    }
    wait_moved(pid, path)
}

/// Stops the scope at `path` and waits (a second at most) until systemd
/// has unloaded it, so that the name is free again, as runc's destroy does.
pub fn stop_scope(path: &Path, manager: Manager) -> Result<(), CgroupError> {
    let unit = unit_of(path)?;
    let mut systemd = Connection::systemd(manager == Manager::User)?;
    let mut stop = unit_arg(unit);
    stop.str("replace");
    match systemd.call(&manager_call("StopUnit", "ss"), &stop.buf) {
        Err(DbusError::Remote { name, .. }) if name == NO_SUCH_UNIT => return Ok(()),
        r => r?,
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match systemd.call(&manager_call("GetUnit", "s"), &unit_arg(unit).buf) {
            Err(DbusError::Remote { name, .. }) if name == NO_SUCH_UNIT => return Ok(()),
            r => r?,
        }
        // Stopped, but kept as failed (its processes were killed): let go.
        let _ = systemd.call(&manager_call("ResetFailedUnit", "s"), &unit_arg(unit).buf);
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(CgroupError::Systemd(format!(
        "{unit} still loaded a second after StopUnit"
    )))
}

const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// The unit name a scope's cgroup path ends in.
fn unit_of(path: &Path) -> Result<&str, CgroupError> {
    let name = path.file_name().and_then(|n| n.to_str());
    name.ok_or_else(|| CgroupError::Systemd(format!("{}: no unit name", path.display())))
}

fn unit_arg(unit: &str) -> Writer {
    let mut w = Writer::default();
    w.str(unit);
    w
}

fn manager_call(member: &'static str, signature: &'static str) -> Call<'static> {
    Call {
        path: "/org/freedesktop/systemd1",
        interface: "org.freedesktop.systemd1.Manager",
        member,
        destination: "org.freedesktop.systemd1",
        signature,
    }
}

/// StartTransientUnit only queues a job: wait until `pid` is in the scope.
fn wait_moved(pid: i32, path: &Path) -> Result<(), CgroupError> {
    let want = path.to_string_lossy().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let now = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if now.lines().any(|l| l.ends_with(&format!(":{want}"))) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(CgroupError::Systemd(format!(
        "process {pid} did not reach scope {want} within 10s"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_unit_properties() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "reservation": 1024},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": -1}
        }))
        .unwrap();
        let v2 = properties(Some(&r), Version::V2);
        assert!(v2.contains(&("MemoryMax", Value::U64(1_048_576))));
        assert!(v2.contains(&("MemoryLow", Value::U64(1024))));
        assert!(v2.contains(&("CPUWeight", Value::U64(39))));
        assert!(v2.contains(&("CPUQuotaPerSecUSec", Value::U64(500_000))));
        assert!(v2.contains(&("TasksMax", Value::U64(u64::MAX))));
        let v1 = properties(Some(&r), Version::V1);
        assert!(v1.contains(&("MemoryLimit", Value::U64(1_048_576))));
        assert!(v1.contains(&("CPUShares", Value::U64(1024))));
    }
}
