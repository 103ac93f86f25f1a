//! `-info`, which containerd 2.x runs before it uses a runtime: the
//! options `Any` (or nothing) on stdin, a `RuntimeInfo` protobuf on stdout.
//! As containerd's runc shim does, the options come back as the shim
//! decoded them, re-encoded as runc options (none when none were sent),
//! and the features are what the
//! runtime binary's `features` prints (containerd checks them, e.g. before
//! idmapped mounts).

use crate::options;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use std::path::Path;

/// The type containerd gives the runtime-spec's features document.
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// The runtime info for the options serialized in `stdin`; the runtime
/// name follows the binary's (`containerd-shim-NAME-v2` serves
/// `io.containerd.NAME.v2`), so that a copy installed under another name
/// reports that name.
pub fn info(binary: &Path, stdin: &[u8]) -> Result<RuntimeInfo, options::OptionsError> {
    let any = options::any_from_bytes(stdin)?;
    let opts = options::from_any(any.as_ref())?;
    Ok(RuntimeInfo {
        name: runtime_name(binary),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
        .into(),
        options: any.map(|_| options::runc_any(&opts)).into(),
        features: features(&opts.binary_name).into(),
        ..Default::default()
    })
}

/// The runtime's `features` output, if it prints a JSON document (a
/// runtime without the command has none to give).
fn features(binary_name: &str) -> Option<Any> {
    let binary = crate::runtime_cli::find_binary(binary_name);
    let out = std::process::Command::new(binary)
        .arg("features")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let is_json = serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok();
    (out.status.success() && is_json).then(|| Any {
        type_url: FEATURES_TYPE.to_owned(),
        value: out.stdout,
        ..Default::default()
    })
}

fn runtime_name(binary: &Path) -> String {
    let file = binary.file_name().unwrap_or_default().to_string_lossy();
    let middle = file
        .strip_prefix("containerd-shim-")
        .and_then(|rest| rest.strip_suffix("-v2"));
    format!("io.containerd.{}.v2", middle.unwrap_or("berth"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::shim::oci::Options;
    use protobuf::Message;

    const BINARY: &str = "/usr/bin/containerd-shim-berth-v2";

    /// What containerd reads: the bytes decoded as a RuntimeInfo.
    fn decoded(stdin: &[u8]) -> RuntimeInfo {
        let bytes = info(Path::new(BINARY), stdin)
            .unwrap()
            .write_to_bytes()
            .unwrap();
        RuntimeInfo::parse_from_bytes(&bytes).unwrap()
    }

    #[test]
    fn info_names_the_runtime_and_its_version() {
        let got = decoded(b"");
        assert_eq!(got.name, "io.containerd.berth.v2");
        assert_eq!(got.version.version, env!("CARGO_PKG_VERSION"));
        assert!(got.options.is_none());
    }

    #[test]
    fn info_returns_the_options_it_was_given() {
        let opts = Options {
            binary_name: "/usr/local/bin/berth".into(),
            ..Default::default()
        };
        let any = options::runc_any(&opts);
        let got = decoded(&any.write_to_bytes().unwrap());
        assert_eq!(got.options.as_ref(), Some(&any));
    }

    /// What `-info` says with options naming a runtime binary that is the
    /// shell script `body`.
    fn decoded_with_script(name: &str, body: &str) -> RuntimeInfo {
        let script = std::env::temp_dir().join(format!("berth-info-{name}-{}", std::process::id()));
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let opts = Options {
            binary_name: script.display().to_string(),
            ..Default::default()
        };
        let got = decoded(&options::runc_any(&opts).write_to_bytes().unwrap());
        std::fs::remove_file(&script).unwrap();
        got
    }

    /// CRI's options for runtimes it does not know mean runc's defaults.
    #[test]
    fn info_returns_the_options_it_decoded() {
        let cri = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: b"\x0a\x01x".to_vec(),
            ..Default::default()
        };
        let got = decoded(&cri.write_to_bytes().unwrap());
        let defaults = options::runc_any(&Options::default());
        assert_eq!(got.options.as_ref(), Some(&defaults));
    }

    #[test]
    fn info_carries_the_runtimes_features() {
        let doc = r#"{"ociVersionMin":"1.0.0","mountOptions":["rro"]}"#;
        let got = decoded_with_script("features", &format!("echo '{doc}'"));
        assert_eq!(got.features.type_url, FEATURES_TYPE);
        assert_eq!(got.features.value, format!("{doc}\n").into_bytes());
        let got = decoded_with_script("none", "echo 'no such command' >&2; exit 1");
        assert!(
            got.features.is_none(),
            "a runtime without `features` has none"
        );
    }

    #[test]
    fn info_refuses_options_of_another_runtime() {
        let junk = b"\x0a\x05other";
        assert!(info(Path::new(BINARY), junk).is_err());
    }

    #[test]
    fn the_name_follows_the_binary() {
        let runc = Path::new("/opt/containerd-shim-runc-v2");
        assert_eq!(runtime_name(runc), "io.containerd.runc.v2");
        assert_eq!(runtime_name(Path::new("shim")), "io.containerd.berth.v2");
    }
}
