//! `start`'s handshake, in the form each containerd generation speaks:
//!
//! - 2.3 and later send a `BootstrapParams` protobuf on stdin (their
//!   runtime options in its extensions) and read a `BootstrapResult`
//!   protobuf, which may offer Task API v3.
//! - 2.0 to 2.2 send the runtime options `Any` on stdin and read JSON
//!   `{"version":3,"address":...,"protocol":"ttrpc"}` as containerd's own
//!   runc shim prints it (or a plain address, taken for version 2).
//! - 1.7 reads the same JSON but refuses a version above 2; 1.6 reads a
//!   plain address only.
//!
//! Nothing 1.7 and 2.0-2.2 send differs (both set `MAX_SHIM_VERSION=2`,
//! which containerd never raised), so the shim asks the binary that runs
//! it, containerd, which module it was built from: `containerd/v2` is 2.x.
//! When that cannot be told, the plain address is what every generation
//! reads.

use crate::go_build;
use containerd_shim::bootstrap::{BootstrapParams, BootstrapResult, LogLevel};
use containerd_shim::protos::TASK_API_VERSION;
use containerd_shim::Flags;
use protobuf::well_known_types::any::Any;
use protobuf::{Enum, Message};
use std::path::Path;

/// The only transport the shim serves.
const PROTOCOL: &str = "ttrpc";
/// containerd 2.x's module, in its main package path.
const CONTAINERD_V2: &str = "github.com/containerd/containerd/v2/";

/// The reply form containerd reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The address alone: Task API v2 (containerd 1.6, 1.7, unknown).
    Address,
    /// JSON with the version: Task API v3 (containerd 2.0 to 2.2).
    Json,
    /// A `BootstrapResult` protobuf: Task API v3 (containerd 2.3+).
    Bootstrap,
}

/// What containerd told `start`, whichever way it did.
#[derive(Debug)]
pub struct Request {
    pub reply: Reply,
    /// The runtime options, if containerd sent any.
    pub options: Option<Any>,
    /// containerd's TTRPC address, when it came on stdin rather than in
    /// the environment.
    pub ttrpc_address: Option<String>,
    /// Where containerd wants the shim's socket, if it said.
    pub socket_dir: Option<String>,
    pub debug: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("bootstrap params for {namespace}/{id} do not match the command line's {flag_namespace}/{flag_id}")]
    Mismatch {
        namespace: String,
        id: String,
        flag_namespace: String,
        flag_id: String,
    },
}

/// Reads `stdin` as containerd `parent` sent it, with `flags` from the
/// command line.
pub fn read(stdin: &[u8], flags: &Flags, parent: &Path) -> Result<Request, HandshakeError> {
    if let Some(params) = bootstrap_params(stdin, flags)? {
        return Ok(from_bootstrap(params, flags.debug));
    }
    let reply = match speaks_v3(parent) {
        true => Reply::Json,
        false => Reply::Address,
    };
    Ok(Request {
        reply,
        options: Any::parse_from_bytes(stdin)
            .ok()
            .filter(|any| !any.type_url.is_empty()),
        ttrpc_address: None,
        socket_dir: None,
        debug: flags.debug,
    })
}

/// Whether the containerd binary at `parent` is 2.x.
fn speaks_v3(parent: &Path) -> bool {
    go_build::main_package(parent).is_some_and(|path| is_containerd_v2(&path))
}

fn is_containerd_v2(main_package: &str) -> bool {
    main_package.starts_with(CONTAINERD_V2)
}

/// The bootstrap params on `stdin`, if that is what it holds. A runtime
/// options `Any` decodes as params too (its type URL and value fall in the
/// id and namespace fields), but then nothing else is set, and its fields
/// do not match the command line.
fn bootstrap_params(
    stdin: &[u8],
    flags: &Flags,
) -> Result<Option<BootstrapParams>, HandshakeError> {
    let Ok(params) = BootstrapParams::parse_from_bytes(stdin) else {
        return Ok(None);
    };
    if params.instance_id == flags.id && params.namespace == flags.namespace {
        return Ok(Some(params));
    }
    let identity_only = BootstrapParams {
        instance_id: params.instance_id.clone(),
        namespace: params.namespace.clone(),
        ..Default::default()
    };
    if params == identity_only {
        return Ok(None);
    }
    Err(HandshakeError::Mismatch {
        namespace: params.namespace,
        id: params.instance_id,
        flag_namespace: flags.namespace.clone(),
        flag_id: flags.id.clone(),
    })
}

fn from_bootstrap(params: BootstrapParams, debug_flag: bool) -> Request {
    let debug = params.log_level.value() <= LogLevel::LOG_LEVEL_DEBUG.value();
    let options = params
        .extensions
        .into_iter()
        .filter_map(|e| e.value.into_option())
        .find(crate::options::is_runtime_options);
    Request {
        reply: Reply::Bootstrap,
        options,
        ttrpc_address: Some(params.containerd_ttrpc_address).filter(|a| !a.is_empty()),
        socket_dir: params.socket_dir.filter(|d| !d.is_empty()),
        debug: debug || debug_flag,
    }
}

/// `start`'s stdout for `address`, in the form `reply`.
pub fn encode(address: &str, reply: Reply) -> Vec<u8> {
    match reply {
        Reply::Address => address.as_bytes().to_vec(),
        Reply::Json => serde_json::json!({
            "version": TASK_API_VERSION,
            "address": address,
            "protocol": PROTOCOL,
        })
        .to_string()
        .into_bytes(),
        Reply::Bootstrap => BootstrapResult {
            version: TASK_API_VERSION,
            address: address.to_owned(),
            protocol: PROTOCOL.to_owned(),
            ..Default::default()
        }
        .write_to_bytes()
        .expect("a BootstrapResult of strings encodes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::bootstrap::Extension;
    use containerd_shim::protos::shim::oci::Options;
    use protobuf::EnumOrUnknown;

    const ADDRESS: &str = "unix:///run/containerd/s/abc";

    fn flags() -> Flags {
        containerd_shim::parse(&["-namespace", "k8s.io", "-id", "c1", "start"]).unwrap()
    }

    fn runc_options() -> Any {
        crate::options::runc_any(&Options {
            shim_cgroup: "/shims".into(),
            ..Default::default()
        })
    }

    fn params() -> BootstrapParams {
        BootstrapParams {
            instance_id: "c1".into(),
            namespace: "k8s.io".into(),
            containerd_version: "v2.3.0".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            socket_dir: Some("/run/containerd/s2".into()),
            extensions: vec![Extension {
                value: Some(runc_options()).into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The parent binary of a 1.x containerd: not a Go 2.x one.
    fn old_parent() -> &'static Path {
        Path::new("/nonexistent/containerd")
    }

    #[test]
    fn bootstrap_params_get_a_bootstrap_result() {
        let stdin = params().write_to_bytes().unwrap();
        let req = read(&stdin, &flags(), old_parent()).unwrap();
        assert_eq!(req.reply, Reply::Bootstrap);
        assert_eq!(req.options, Some(runc_options()));
        assert_eq!(
            req.ttrpc_address.as_deref(),
            Some("/run/containerd/containerd.sock.ttrpc")
        );
        assert_eq!(req.socket_dir.as_deref(), Some("/run/containerd/s2"));
        assert!(!req.debug);
        let result = BootstrapResult::parse_from_bytes(&encode(ADDRESS, req.reply)).unwrap();
        assert_eq!(
            (
                result.version,
                result.address.as_str(),
                result.protocol.as_str()
            ),
            (3, ADDRESS, "ttrpc")
        );
    }

    #[test]
    fn a_debug_log_level_means_debug() {
        let mut p = params();
        p.log_level = EnumOrUnknown::new(LogLevel::LOG_LEVEL_TRACE);
        let req = read(&p.write_to_bytes().unwrap(), &flags(), old_parent()).unwrap();
        assert!(req.debug);
    }

    #[test]
    fn bootstrap_params_for_another_task_are_refused() {
        let mut p = params();
        p.instance_id = "other".into();
        let err = read(&p.write_to_bytes().unwrap(), &flags(), old_parent()).unwrap_err();
        assert!(err.to_string().contains("k8s.io/other"), "{err}");
    }

    #[test]
    fn runtime_options_are_not_taken_for_bootstrap_params() {
        let empty = crate::options::runc_any(&Options::default());
        for any in [runc_options(), empty] {
            let req = read(&any.write_to_bytes().unwrap(), &flags(), old_parent()).unwrap();
            assert_eq!(req.reply, Reply::Address);
            assert_eq!(req.options, Some(any));
        }
        let req = read(b"", &flags(), old_parent()).unwrap();
        assert_eq!((req.reply, req.options), (Reply::Address, None));
    }

    /// containerd 1.6 reads the address as it is; 1.7 would refuse JSON
    /// with version 3, 2.0-2.2 read it.
    #[test]
    fn replies_are_what_each_generation_parses() {
        assert_eq!(encode(ADDRESS, Reply::Address), ADDRESS.as_bytes());
        let json: serde_json::Value =
            serde_json::from_slice(&encode(ADDRESS, Reply::Json)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 3, "address": ADDRESS, "protocol": "ttrpc"})
        );
    }

    /// The main packages of Debian's containerd 2.1.9 and 1.7.24.
    #[test]
    fn only_containerd_2_gets_version_3() {
        assert!(is_containerd_v2(
            "github.com/containerd/containerd/v2/cmd/containerd"
        ));
        assert!(!is_containerd_v2(
            "github.com/containerd/containerd/cmd/containerd"
        ));
        assert!(!speaks_v3(old_parent()));
    }
}
