//! Loading and validating a bundle's `config.json`.
//!
//! Everything that can be checked without touching the system is checked
//! here, before `create` makes a state directory or forks, so bad input
//! fails with a message naming the field and leaves nothing behind.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON at {field}: {msg}")]
    Parse {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("config.json: {field}: {why}")]
    Invalid { field: String, why: String },
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// A validated bundle: its spec and the absolute paths it names.
pub struct Bundle {
    pub path: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Reads `<bundle>/config.json` and validates it.
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    let path = std::path::absolute(bundle)
        .map_err(|source| SpecError::Read {
            path: bundle.to_path_buf(),
            source,
        })?
        .to_path_buf();
    let config = path.join("config.json");
    let data = std::fs::read(&config).map_err(|source| SpecError::Read {
        path: config.clone(),
        source,
    })?;
    let mut spec = parse(&data).map_err(|(field, msg)| SpecError::Parse {
        path: config,
        field,
        msg,
    })?;
    forget_empty_namespace_paths(&mut spec);
    if let Some(field) = old_rdt_monitoring(&data) {
        return Err(invalid(format!("linux.intelRdt.{field}"), no_rdt(RESCTRL)));
    }
    validate(&spec)?;
    let rootfs = rootfs_path(&path, &spec)?;
    strip_rootfs_from_destinations(&mut spec, &rootfs);
    Ok(Bundle { path, rootfs, spec })
}

/// `"path": ""` asks for a new namespace, as no path does (runc reads it
/// so, and configs made by editing a joining one write it).
fn forget_empty_namespace_paths(spec: &mut Spec) {
    let namespaces = spec
        .linux_mut()
        .iter_mut()
        .flat_map(|l| l.namespaces_mut().iter_mut().flatten());
    for ns in namespaces.filter(|ns| ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty())) {
        ns.set_path(None);
    }
}

/// A mount destination written as a host path below the rootfs
/// (`<rootfs>/mnt`) means the container's `/mnt`, as runc reads it;
/// joined to the rootfs again it would name `<rootfs><rootfs>/mnt`.
fn strip_rootfs_from_destinations(spec: &mut Spec, rootfs: &Path) {
    let canonical = std::fs::canonicalize(rootfs).ok();
    let prefixes: Vec<&Path> = std::iter::once(rootfs)
        .chain(canonical.as_deref())
        .collect();
    for m in spec.mounts_mut().iter_mut().flatten() {
        let inside = prefixes
            .iter()
            .find_map(|p| m.destination().strip_prefix(p).ok());
        if let Some(inside) = inside {
            let dest = Path::new("/").join(inside);
            m.set_destination(dest);
        }
    }
}

/// Parses config.json, reporting the JSON path of the first bad field.
/// A good config is read once, by serde_json alone; only a config that
/// fails is read again, as JSON, [`repair_process`]ed and followed field
/// by field, so the path-tracking code (the largest part of berth's text)
/// is never paged in on the way to a container.
pub fn parse(data: &[u8]) -> Result<Spec, (String, String)> {
    let mut spec = match serde_json::from_slice(data) {
        Ok(spec) => spec,
        Err(_) => parse_repaired(data)?,
    };
    keep_a_zero_pids_limit(&mut spec, data);
    Ok(spec)
}

fn parse_repaired(data: &[u8]) -> Result<Spec, (String, String)> {
    // Tracked even as plain JSON, so a syntax error names the field it is in.
    let de = &mut serde_json::Deserializer::from_slice(data);
    let mut v: serde_json::Value = serde_path_to_error::deserialize(&mut *de).map_err(located)?;
    de.end().map_err(|e| ("top level".into(), e.to_string()))?;
    if let Some(p) = v.get_mut("process") {
        repair_process(p);
    }
    serde_path_to_error::deserialize(v).map_err(located)
}

/// Since runtime-spec 1.3 an explicit `pids.limit` of 0 is a limit, not
/// "none". It is written as 1, as runc 1.4 does: forks are refused all the
/// same, and init can still join. Configs for older specs meant "none" by
/// it (CRI-O before 1.29 and podman's compat API write it so, and runc 1.4
/// broke them), and oci-spec reads a missing limit as 0 as well: the
/// config's version and its JSON tell the three apart.
fn keep_a_zero_pids_limit(spec: &mut Spec, data: &[u8]) {
    if !at_least_1_3(spec.version()) {
        return;
    }
    let pids = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
        .and_then(|r| r.pids_mut().as_mut());
    let Some(pids) = pids.filter(|p| p.limit() == 0) else {
        return;
    };
    let raw: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    let limit = raw
        .as_ref()
        .and_then(|v| v.pointer("/linux/resources/pids/limit"));
    if limit.and_then(serde_json::Value::as_i64) == Some(0) {
        pids.set_limit(1);
    }
}

/// Intel RDT monitoring as specs before 1.3 asked for it, which oci-spec
/// no longer reads (it spells them `enableCmt`, `enableMbm`): refused by
/// their own names, as `enableMonitoring` is. The raw JSON is read only
/// when the bytes are there.
fn old_rdt_monitoring(data: &[u8]) -> Option<&'static str> {
    let asked = ["enableCMT", "enableMBM"]
        .into_iter()
        .filter(|f| data.windows(f.len()).any(|w| w == f.as_bytes()))
        .collect::<Vec<_>>();
    if asked.is_empty() {
        return None;
    }
    let raw: serde_json::Value = serde_json::from_slice(data).ok()?;
    asked.into_iter().find(|f| {
        raw.pointer(&format!("/linux/intelRdt/{f}")) == Some(&serde_json::Value::Bool(true))
    })
}

/// Whether an `ociVersion` ("1.3.0", "1.3.0-rc.1", "1.0.2-dev") is 1.3 or
/// later.
fn at_least_1_3(version: &str) -> bool {
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    matches!(
        (parts.next().flatten(), parts.next().flatten()),
        (Some(major), Some(minor)) if (major, minor) >= (1, 3)
    )
}

/// Makes a process (JSON, before the typed parse) one oci-spec takes:
/// capability names berth does not know are dropped with a warning, and
/// the spec's scheduler flag names become the ones oci-spec spells.
pub fn repair_process(process: &mut serde_json::Value) {
    crate::capabilities::drop_unknown(process);
    crate::sched::respell_flags(process);
}

fn located<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> (String, String) {
    let field = match e.path().to_string() {
        p if p == "." => "top level".to_string(),
        p => p,
    };
    (field, e.inner().to_string())
}

fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let joined = bundle.join(root.path());
    match std::fs::metadata(&joined) {
        Ok(m) if m.is_dir() => Ok(joined),
        Ok(_) => Err(invalid(
            "root.path",
            format!("{} is not a directory", joined.display()),
        )),
        Err(e) => Err(invalid(
            "root.path",
            format!("rootfs {} does not exist: {e}", joined.display()),
        )),
    }
}

/// Checks what the runtime spec and runc require beyond the JSON shape.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    validate_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "empty"));
    }
    validate_process(spec)?;
    validate_mounts(spec)?;
    validate_hooks(spec)?;
    validate_linux(spec)?;
    validate_without_mount_ns(spec)?;
    // A profile or label this host cannot apply fails the container
    // rather than run it less confined than asked.
    crate::lsm::check(spec).map_err(|(field, why)| invalid(field, why))
}

fn validate_version(v: &str) -> Result<(), SpecError> {
    if v.is_empty() {
        return Err(invalid("ociVersion", "missing"));
    }
    if !v.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{v:?} is not a 1.x runtime spec version"),
        ));
    }
    Ok(())
}

fn validate_process(spec: &Spec) -> Result<(), SpecError> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must name a program to run"));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not an absolute path", p.cwd().display()),
        ));
    }
    if p.user().username().is_some() {
        return Err(invalid(
            "process.user.username",
            "is not supported on Linux",
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        let problem = match e.find('=') {
            None => "is not KEY=VALUE",
            Some(0) => "has an empty name",
            Some(_) if e.contains('\0') => "contains a NUL byte",
            Some(_) => continue,
        };
        return Err(invalid(
            format!("process.env[{i}]"),
            format!("{e:?} {problem}"),
        ));
    }
    crate::sched::check(p).map_err(|(field, why)| invalid(field, why))?;
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!(
                    "{}: soft limit {} exceeds hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
    }
    Ok(())
}

fn validate_mounts(spec: &Spec) -> Result<(), SpecError> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{} is not an absolute path", m.destination().display()),
            ));
        }
        crate::rootfs::idmap::of(m, spec.linux().as_ref())
            .map_err(|why| invalid(format!("mounts[{i}] ({})", m.destination().display()), why))?;
    }
    Ok(())
}

/// berth has no Intel RDT: a field asking for an allocation or for
/// monitoring fails by name rather than run the container without it, as
/// runc refuses a schema it cannot apply. `closID` alone names a group to
/// join; where there is no resctrl there is none, and runc then runs the
/// container without one.
fn validate_intel_rdt(
    rdt: &oci_spec::runtime::LinuxIntelRdt,
    resctrl: &Path,
) -> Result<(), SpecError> {
    let has_resctrl = resctrl.exists();
    let asked = [
        (
            "schemata",
            rdt.schemata().as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("l3CacheSchema", rdt.l3_cache_schema().is_some()),
        ("memBwSchema", rdt.mem_bw_schema().is_some()),
        ("enableMonitoring", *rdt.enable_monitoring() == Some(true)),
        ("closID", rdt.clos_id().is_some() && has_resctrl),
    ];
    let Some((field, _)) = asked.iter().find(|(_, asked)| *asked) else {
        return Ok(());
    };
    Err(invalid(format!("linux.intelRdt.{field}"), no_rdt(resctrl)))
}

const RESCTRL: &str = "/sys/fs/resctrl";

fn no_rdt(resctrl: impl AsRef<Path>) -> String {
    let resctrl = resctrl.as_ref();
    match resctrl.exists() {
        true => "berth does not support Intel RDT".to_string(),
        false => format!(
            "Intel RDT is not available on this host (no resctrl filesystem at {})",
            resctrl.display()
        ),
    }
}

/// Offsets go with a time namespace berth makes (a joined one has its
/// clocks set already), for the two clocks a time namespace has.
fn validate_time_offsets(
    linux: &oci_spec::runtime::Linux,
    new_timens: bool,
) -> Result<(), SpecError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if !new_timens {
        return Err(invalid(
            "linux.timeOffsets",
            "needs a new time namespace in linux.namespaces",
        ));
    }
    match offsets
        .keys()
        .find(|k| !["monotonic", "boottime"].contains(&k.as_str()))
    {
        Some(k) => Err(invalid(
            format!("linux.timeOffsets.{k}"),
            "unknown clock (monotonic or boottime)",
        )),
        None => Ok(()),
    }
}

fn validate_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for kind in crate::hooks::HookKind::ALL {
        let list = kind.of(hooks);
        for (i, h) in list.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(invalid(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{} is not an absolute path", h.path().display()),
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(invalid(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be a positive number of seconds",
                ));
            }
        }
    }
    Ok(())
}

fn validate_linux(spec: &Spec) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(policy) = linux.memory_policy() {
        crate::mempolicy::check(policy).map_err(|(field, why)| invalid(field, why))?;
    }
    if let Some(rdt) = linux.intel_rdt() {
        validate_intel_rdt(rdt, Path::new(RESCTRL))?;
    }
    crate::netdev::check(linux).map_err(|(field, why)| invalid(field, why))?;
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("namespace {:?} given twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
    }
    let new_ns = |t| {
        linux
            .namespaces()
            .iter()
            .flatten()
            .any(|ns| ns.typ() == t && ns.path().is_none())
    };
    let has_ns = |t| seen.contains(&t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_ns(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        ));
    }
    if new_ns(LinuxNamespaceType::User) {
        for (field, m) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            if m.as_ref().is_none_or(|m| m.is_empty()) {
                return Err(invalid(field, "a new user namespace needs id mappings"));
            }
        }
    }
    for (field, set) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if set.as_ref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts) {
            return Err(invalid(
                field,
                "cannot be set without a uts namespace in linux.namespaces",
            ));
        }
    }
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        validate_sysctl(key, &has_ns)?;
    }
    validate_time_offsets(linux, new_ns(LinuxNamespaceType::Time))?;
    if linux
        .personality()
        .as_ref()
        .is_some_and(|p| p.flags().as_ref().is_some_and(|f| !f.is_empty()))
    {
        return Err(invalid("linux.personality.flags", "no flags are supported"));
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            return Err(invalid(
                format!("linux.devices[{i}].path"),
                format!("{} is not an absolute path", d.path().display()),
            ));
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        crate::rootfs::options::propagation(p)
            .ok_or_else(|| invalid("linux.rootfsPropagation", format!("unknown value {p:?}")))?;
    }
    Ok(())
}

/// Without a mount namespace of its own the container shares the
/// caller's mount table, where whatever it mounted would stay (runc does
/// mount there): berth only chroots then, and refuses what needs a mount.
fn validate_without_mount_ns(spec: &Spec) -> Result<(), SpecError> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]);
    if namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount)
    {
        return Ok(());
    }
    let listed = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    let needs_mounts = [
        (
            "mounts",
            spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "linux.maskedPaths",
            listed(linux.and_then(|l| l.masked_paths().as_ref())),
        ),
        (
            "linux.readonlyPaths",
            listed(linux.and_then(|l| l.readonly_paths().as_ref())),
        ),
        (
            "root.readonly",
            spec.root().as_ref().and_then(|r| r.readonly()) == Some(true),
        ),
        (
            "linux.rootfsPropagation",
            linux
                .and_then(|l| l.rootfs_propagation().as_ref())
                .is_some(),
        ),
    ];
    match needs_mounts.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(invalid(
            *field,
            "needs a mount namespace in linux.namespaces: without one it would change the caller's mounts",
        )),
        None => Ok(()),
    }
}

/// runc's rule: a sysctl may only be set inside a namespace that isolates
/// it (created for the container or joined by path).
fn validate_sysctl(
    key: &str,
    has_ns: &dyn Fn(LinuxNamespaceType) -> bool,
) -> Result<(), SpecError> {
    const IPC: [&str; 6] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
    ];
    const IPC_MORE: [&str; 2] = ["kernel.shmmni", "kernel.shm_rmid_forced"];
    let needs = if IPC.contains(&key) || IPC_MORE.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(invalid(
            format!("linux.sysctl[{key:?}]"),
            "is not in a separate kernel namespace",
        ));
    };
    if key
        .split(['.', '/'])
        .any(|part| part.is_empty() || part == "..")
    {
        return Err(invalid(format!("linux.sysctl[{key:?}]"), "invalid name"));
    }
    if !has_ns(needs) {
        return Err(invalid(
            format!("linux.sysctl[{key:?}]"),
            format!("needs a {needs:?} namespace in linux.namespaces"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<(), String> {
        let spec = parse(v.to_string().as_bytes()).map_err(|(f, m)| format!("{f}: {m}"))?;
        validate(&spec).map_err(|e| e.to_string())
    }

    fn err_of(mutate: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v = base();
        mutate(&mut v);
        check(v).unwrap_err()
    }

    #[test]
    fn base_is_valid() {
        check(base()).unwrap();
    }

    #[test]
    fn a_zero_pids_limit_is_a_limit_from_spec_1_3_on() {
        let limit = |version: &str, pids: serde_json::Value| {
            let mut v = base();
            v["ociVersion"] = version.into();
            v["linux"]["resources"] = serde_json::json!({"pids": pids});
            let spec = parse(v.to_string().as_bytes()).unwrap();
            let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
            r.pids().unwrap().limit()
        };
        let zero = serde_json::json!({"limit": 0});
        assert_eq!(limit("1.3.0", zero.clone()), 1);
        assert_eq!(limit("1.3.0-rc.1", zero.clone()), 1);
        assert_eq!(limit("1.10.0", zero.clone()), 1);
        assert_eq!(limit("1.2.1", zero.clone()), 0);
        assert_eq!(limit("1.0.2-dev", zero), 0);
        assert_eq!(limit("1.3.0", serde_json::json!({})), 0);
        assert_eq!(limit("1.3.0", serde_json::json!({"limit": -1})), -1);
    }

    #[test]
    fn intel_rdt_fields_are_refused_by_name() {
        let check = |rdt: serde_json::Value, resctrl: &str| {
            let rdt = serde_json::from_value(rdt).unwrap();
            validate_intel_rdt(&rdt, Path::new(resctrl)).map_err(|e| e.to_string())
        };
        let none = "/nonexistent/resctrl";
        let err = check(serde_json::json!({"l3CacheSchema": "L3:0=f"}), none).unwrap_err();
        assert!(
            err.contains("linux.intelRdt.l3CacheSchema") && err.contains("no resctrl"),
            "{err}"
        );
        let err = check(serde_json::json!({"enableMonitoring": true}), none).unwrap_err();
        assert!(err.contains("linux.intelRdt.enableMonitoring"), "{err}");
        let err = check(serde_json::json!({"closID": "g"}), "/").unwrap_err();
        assert!(err.contains("closID: berth does not support"), "{err}");
        check(serde_json::json!({"closID": "g", "schemata": []}), none).unwrap();
        check(serde_json::json!({}), "/").unwrap();
        let old = |rdt: serde_json::Value| {
            old_rdt_monitoring(
                serde_json::json!({"linux": {"intelRdt": rdt}})
                    .to_string()
                    .as_bytes(),
            )
        };
        assert_eq!(
            old(serde_json::json!({"enableMBM": true})),
            Some("enableMBM")
        );
        assert_eq!(old(serde_json::json!({"enableCMT": false})), None);
        assert_eq!(old(serde_json::json!({"closID": "enableCMT"})), None);
    }

    #[test]
    fn a_config_with_a_bad_field_or_trailing_bytes_is_refused_by_name() {
        let mut bad = base();
        bad["process"]["user"]["uid"] = "root".into();
        let (field, msg) = parse(bad.to_string().as_bytes()).unwrap_err();
        assert_eq!(field, "process.user.uid");
        assert!(msg.contains("invalid type"), "{msg}");
        let trailing = format!("{} x", base());
        let (field, msg) = parse(trailing.as_bytes()).unwrap_err();
        assert_eq!(field, "top level");
        assert!(msg.contains("trailing"), "{msg}");
    }

    #[test]
    fn malformed_json_names_position() {
        let (field, msg) = parse(b"{\"ociVersion\": ").unwrap_err();
        assert_eq!(field, "ociVersion");
        assert!(msg.contains("EOF"), "{msg}");
    }

    #[test]
    fn missing_version() {
        let e = err_of(|v| drop(v.as_object_mut().unwrap().remove("ociVersion")));
        assert_eq!(e, "config.json: ociVersion: missing");
    }

    #[test]
    fn unknown_namespace_names_field() {
        let e = err_of(|v| v["linux"]["namespaces"][1]["type"] = "bogus".into());
        assert!(
            e.starts_with("linux.namespaces[1].type: unknown variant `bogus`"),
            "{e}"
        );
    }

    #[test]
    fn relative_mount_destination() {
        let e =
            err_of(|v| v["mounts"] = serde_json::json!([{"destination": "tmp", "type": "tmpfs"}]));
        assert_eq!(
            e,
            "config.json: mounts[0].destination: tmp is not an absolute path"
        );
    }

    #[test]
    fn duplicate_namespace() {
        let e = err_of(|v| v["linux"]["namespaces"][1]["type"] = "mount".into());
        assert!(e.contains("linux.namespaces[1]"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let e = err_of(|v| {
            v["hostname"] = "h".into();
            v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        });
        assert!(e.starts_with("config.json: hostname:"), "{e}");
    }

    #[test]
    fn user_ns_needs_mappings() {
        let e = err_of(|v| v["linux"]["namespaces"][1]["type"] = "user".into());
        assert!(e.contains("linux.uidMappings"), "{e}");
    }

    #[test]
    fn sysctl_rules() {
        let e = err_of(|v| v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"}));
        assert!(e.contains("not in a separate kernel namespace"), "{e}");
        let e = err_of(|v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"}));
        assert!(e.contains("Network"), "{e}");
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "ipc".into();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.msgmax": "1"});
        check(v).unwrap();
    }

    #[test]
    fn empty_args_and_relative_cwd() {
        let e = err_of(|v| v["process"]["args"] = serde_json::json!([]));
        assert!(e.contains("process.args"), "{e}");
        let e = err_of(|v| v["process"]["cwd"] = "x".into());
        assert!(e.contains("process.cwd"), "{e}");
    }

    #[test]
    fn bad_idmap_and_propagation() {
        let e = err_of(
            |v| v["mounts"] = serde_json::json!([{"destination": "/x", "type": "bind", "source": "/", "options": ["idmap"]}]),
        );
        assert!(e.contains("mounts[0] (/x): idmap needs uidMappings"), "{e}");
        let e = err_of(
            |v| v["mounts"] = serde_json::json!([{"destination": "/x", "type": "tmpfs", "source": "t", "options": ["ridmap"]}]),
        );
        assert!(e.contains("bind mounts only"), "{e}");
        let e = err_of(|v| v["linux"]["rootfsPropagation"] = "sideways".into());
        assert!(e.contains("linux.rootfsPropagation"), "{e}");
    }

    #[test]
    fn labels_this_host_cannot_apply_are_refused() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(Edit, &str, bool); 3] = [
            (
                |v| v["process"]["apparmorProfile"] = "docker-default".into(),
                "process.apparmorProfile",
                crate::lsm::apparmor_enabled(),
            ),
            (
                |v| v["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into(),
                "process.selinuxLabel",
                crate::lsm::selinux_enabled(),
            ),
            (
                |v| v["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into(),
                "linux.mountLabel",
                crate::lsm::selinux_enabled(),
            ),
        ];
        for (edit, field, host_has_it) in cases {
            if !host_has_it {
                let e = err_of(edit);
                assert!(e.starts_with(&format!("config.json: {field}:")), "{e}");
            }
        }
    }

    #[test]
    fn without_a_mount_namespace_nothing_is_mounted() {
        let no_mount_ns = |c: &mut serde_json::Value| {
            c["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        };
        let e = err_of(|c| {
            no_mount_ns(c);
            c["mounts"] = serde_json::json!([{"destination": "/proc", "type": "proc"}]);
        });
        assert!(e.contains("mounts: needs a mount namespace"), "{e}");
        let e = err_of(|c| {
            no_mount_ns(c);
            c["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
        });
        assert!(e.contains("linux.maskedPaths"), "{e}");
        let mut ok = base();
        no_mount_ns(&mut ok);
        check(ok).unwrap();
    }

    #[test]
    fn relative_hook_path() {
        let e = err_of(|v| v["hooks"] = serde_json::json!({"prestart": [{"path": "bin/x"}]}));
        assert!(e.contains("hooks.prestart[0].path"), "{e}");
    }
}
