//! The five capability sets of the container process, applied around the
//! switch to the container's user as runc does: bounding set first, then
//! (after setuid with keep-caps) inheritable, effective, permitted, ambient.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
#[error("cannot set the {set} capability set: {msg}")]
pub struct CapsError {
    set: &'static str,
    msg: String,
}

/// The caps the running kernel knows. Asking costs one prctl per cap, and
/// the answer cannot change, so it is asked once per process (not once
/// per set: that was 290 calls a container).
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

/// Converts a spec set to the caps the running kernel knows; others are
/// skipped, as runc does, so one profile works across kernels.
fn convert(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<Capability>().ok())
        .filter(|c| supported().contains(c))
        .collect()
}

/// A spec name as oci-spec knows it (None for a newer kernel's or a typo).
fn known(name: &str) -> Option<oci_spec::runtime::Capability> {
    serde_json::from_value(name.into()).ok()
}

/// The capabilities `names` (`exec --cap`) name, each looked up once; the
/// names oci-spec does not know are left out, with a warning.
pub fn known_only(names: &[String]) -> Capabilities {
    let mut unknown = Vec::new();
    let caps = names
        .iter()
        .filter_map(|name| {
            let cap = known(name);
            if cap.is_none() {
                unknown.push(name.clone());
            }
            cap
        })
        .collect();
    warn_unknown(&unknown);
    caps
}

/// runc's warning for the names it ignores, so that a profile written for
/// a newer kernel still runs.
fn warn_unknown(names: &[String]) {
    if !names.is_empty() {
        crate::logging::warn(&format!(
            "ignoring unknown or unavailable capabilities: [{}]",
            names.join(" ")
        ));
    }
}

/// Takes the names oci-spec does not know out of a process's capability
/// sets (JSON, before the typed parse would refuse them), with a warning.
pub fn drop_unknown(process: &mut serde_json::Value) {
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    let mut unknown = Vec::new();
    for names in sets.values_mut().filter_map(|s| s.as_array_mut()) {
        names.retain(|n| match n.as_str() {
            Some(name) if known(name).is_none() => {
                if !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_string());
                }
                false
            }
            _ => true,
        });
    }
    warn_unknown(&unknown);
}

// Not error::Context: caps reports a message of its own, not an OS error.
fn fail(set: &'static str) -> impl FnOnce(caps::errors::CapsError) -> CapsError {
    move |e| CapsError {
        set,
        msg: e.to_string(),
    }
}

/// Drops everything outside the spec's bounding set (needs CAP_SETPCAP, so
/// it runs while init is still fully privileged).
pub fn apply_bounding(c: &LinuxCapabilities) -> Result<(), CapsError> {
    let keep = convert(c.bounding());
    for &cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(fail("bounding"))?;
        }
    }
    Ok(())
}

/// Sets inheritable, effective, permitted and ambient after the uid switch.
///
/// A cap berth itself does not hold cannot be granted. runc fails the
/// container then (so `--privileged` fails on a host that withholds one
/// cap); berth grants what it holds and logs what it could not.
pub fn apply_sets(c: &LinuxCapabilities) -> Result<(), CapsError> {
    let held = caps::read(None, CapSet::Permitted).map_err(fail("permitted"))?;
    let grant = |name: &'static str, set: &Option<Capabilities>| {
        let want = convert(set);
        let missing: Vec<String> = want.difference(&held).map(|c| c.to_string()).collect();
        if !missing.is_empty() {
            crate::logging::warn(&format!(
                "{name} capabilities not held by the runtime, not granted: {}",
                missing.join(", ")
            ));
        }
        want.intersection(&held).copied().collect::<CapsHashSet>()
    };
    let (inh, eff, prm) = (
        grant("inheritable", c.inheritable()),
        grant("effective", c.effective()),
        grant("permitted", c.permitted()),
    );
    caps::set(None, CapSet::Inheritable, &inh).map_err(fail("inheritable"))?;
    caps::set(None, CapSet::Effective, &eff).map_err(fail("effective"))?;
    caps::set(None, CapSet::Permitted, &prm).map_err(fail("permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(fail("ambient"))?;
    // The kernel only raises an ambient cap that is also permitted and
    // inheritable; specs often list more (runc 1.1's default did), and
    // runc skips those with a warning in these words rather than failing.
    for cap in convert(c.ambient()) {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            crate::logging::warn(&format!("can't raise ambient capability {cap}: {e}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_spec_names() {
        let set: Capabilities = serde_json::from_str(r#"["CAP_CHOWN", "CAP_NET_RAW"]"#).unwrap();
        let got = convert(&Some(set));
        assert!(got.contains(&Capability::CAP_CHOWN));
        assert!(got.contains(&Capability::CAP_NET_RAW));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn exec_caps_keep_the_known_names() {
        let names = ["CAP_CHOWN".to_string(), "CAP_NOT_YET".to_string()];
        let got = known_only(&names);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [oci_spec::runtime::Capability::Chown]
        );
    }
}
