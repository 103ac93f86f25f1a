//! AppArmor profiles and SELinux labels. A process's profile or label is
//! set for its next exec through `/proc/thread-self/attr`, as runc does;
//! a mount label becomes the `context=` of the filesystems berth mounts.
//! On a host without the module a config that asks for one fails: running
//! the container less confined than asked would be worse than not at all.

use crate::procfs::Procfs;
use oci_spec::runtime::{Mount, Process, Spec};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("set the {module} label {value:?} for exec: {source}")]
pub struct ApplyError {
    module: &'static str,
    value: String,
    source: std::io::Error,
}

/// A field the host cannot apply, and why, for the caller's message.
pub type Refused = (String, String);

/// Filesystems that take an SELinux `context=` mount option.
const LABELED_FS: [&str; 3] = ["tmpfs", "devpts", "mqueue"];

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn refused(field: String, value: &str, module: &str) -> Refused {
    (
        field,
        format!("{value}: {module} is not enabled on this host"),
    )
}

/// Refuses what this host cannot apply; `field` prefixes the process's
/// fields (`process` for config.json, `exec` for exec's flags).
pub fn check_process(p: &Process, field: &str) -> Result<(), Refused> {
    if let Some(v) = non_empty(p.apparmor_profile()) {
        if !apparmor_enabled() {
            return Err(refused(format!("{field}.apparmorProfile"), v, "AppArmor"));
        }
    }
    match non_empty(p.selinux_label()) {
        Some(v) if !selinux_enabled() => {
            Err(refused(format!("{field}.selinuxLabel"), v, "SELinux"))
        }
        _ => Ok(()),
    }
}

pub fn check(spec: &Spec) -> Result<(), Refused> {
    if let Some(p) = spec.process() {
        check_process(p, "process")?;
    }
    match spec
        .linux()
        .as_ref()
        .and_then(|l| non_empty(l.mount_label()))
    {
        Some(v) if !selinux_enabled() => Err(refused("linux.mountLabel".into(), v, "SELinux")),
        _ => Ok(()),
    }
}

/// Sets the profile and label the process gets at its next exec. Runs in
/// the container process while it still has its capabilities.
pub fn set_exec_labels(p: &Process) -> Result<(), ApplyError> {
    if let Some(v) = non_empty(p.apparmor_profile()) {
        // AppArmor's own file since 5.8; the shared one before.
        let data = format!("exec {v}");
        match write_attr("thread-self/attr/apparmor/exec", &data, "AppArmor", v) {
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
                write_attr("thread-self/attr/exec", &data, "AppArmor", v)?
            }
            r => r?,
        }
    }
    if let Some(v) = non_empty(p.selinux_label()) {
        write_attr("thread-self/attr/exec", v, "SELinux", v)?;
    }
    Ok(())
}

/// Writes through a checked procfs: the container's mounts are in place.
fn write_attr(file: &str, data: &str, module: &'static str, value: &str) -> Result<(), ApplyError> {
    Procfs::write_once(file, data.as_bytes()).map_err(|source| ApplyError {
        module,
        value: value.into(),
        source,
    })
}

/// `data` with the mount label added, for the filesystems that take one.
pub fn mount_data(m: &Mount, data: String, label: Option<&str>) -> String {
    let typ = m.typ().as_deref().unwrap_or("");
    match label.filter(|l| !l.is_empty() && LABELED_FS.contains(&typ)) {
        Some(l) if data.is_empty() => format!("context=\"{l}\""),
        Some(l) => format!("{data},context=\"{l}\""),
        None => data,
    }
}
