//! `-info`, which containerd 2.x runs before it uses a runtime: the
//! options `Any` (or nothing) on stdin, a `RuntimeInfo` protobuf on stdout.
//! As containerd's runc shim does, the options come back as they were sent,
//! once they are known to be runc options.

use crate::options;
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use std::path::Path;

/// The runtime info for the options serialized in `stdin`; the runtime
/// name follows the binary's (`containerd-shim-NAME-v2` serves
/// `io.containerd.NAME.v2`), so that a copy installed under another name
/// reports that name.
pub fn info(binary: &Path, stdin: &[u8]) -> Result<RuntimeInfo, options::OptionsError> {
    let any = options::any_from_bytes(stdin)?;
    options::from_any(any.as_ref())?;
    Ok(RuntimeInfo {
        name: runtime_name(binary),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
        .into(),
        options: any.into(),
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
