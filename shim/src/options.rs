//! The container's runtime options as containerd hands them over: an `Any`
//! that is a `containerd.runc.v1.Options` (what ctr, CRI and Docker send
//! for runc-like runtimes), given to Create, on `start`'s stdin, and on
//! `-info`'s stdin. CRI sends `runtimeoptions.v1.Options` instead to a
//! runtime type it does not know as runc's: its `ConfigPath` is for shims
//! with a config file of their own, which berth has not, so it means the
//! defaults. containerd's client (1.6, 1.7) sends runc v1's
//! `containerd.linux.runc.CreateOptions` to a runtime not named runc's
//! when a task asks for an option (`ctr run --uidmap`, `--no-pivot`):
//! runc's own v2 shim reads those too. Anything else is refused by name
//! rather than ignored, so that a misconfigured runtime is seen at once.

use containerd_shim::protos::shim::oci::Options;
use protobuf::well_known_types::any::Any;
use protobuf::{CodedInputStream, Message};

/// The type URL containerd gives runc's options.
const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
/// The type URL of CRI's options for other runtimes.
const CRI_OPTIONS: &str = "runtimeoptions.v1.Options";
/// The type URL of runc v1's task options.
const LEGACY_OPTIONS: &str = "containerd.linux.runc.CreateOptions";
/// The type URL of a checkpoint's options (runctypes' runc.proto).
const CHECKPOINT_OPTIONS: &str = "containerd.runc.v1.CheckpointOptions";

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("runtime options: {0}")]
    Decode(#[from] protobuf::Error),
    #[error("runtime options of type {0:?}: expected {RUNC_OPTIONS}")]
    Type(String),
    #[error("checkpoint options of type {0:?}: expected {CHECKPOINT_OPTIONS}")]
    CheckpointType(String),
}

/// `containerd.runc.v1.CheckpointOptions`, which the crate's protos lack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Stop the container with the dump (`ctr task checkpoint --exit`).
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub empty_namespaces: Vec<String>,
    pub cgroups_mode: String,
    pub image_path: String,
    pub work_path: String,
}

/// The checkpoint options `any` holds (the defaults when there are none).
pub fn checkpoint_from_any(any: Option<&Any>) -> Result<CheckpointOptions, OptionsError> {
    match any {
        None => Ok(CheckpointOptions::default()),
        Some(any) if any.type_url.is_empty() && any.value.is_empty() => {
            Ok(CheckpointOptions::default())
        }
        Some(any) if any.type_url.ends_with(CHECKPOINT_OPTIONS) => Ok(checkpoint_from(&any.value)?),
        Some(any) => Err(OptionsError::CheckpointType(any.type_url.clone())),
    }
}

fn checkpoint_from(bytes: &[u8]) -> protobuf::Result<CheckpointOptions> {
    let mut opts = CheckpointOptions::default();
    each_field(bytes, |field, is| {
        match field {
            1 => opts.exit = is.read_bool()?,
            2 => opts.open_tcp = is.read_bool()?,
            3 => opts.external_unix_sockets = is.read_bool()?,
            4 => opts.terminal = is.read_bool()?,
            5 => opts.file_locks = is.read_bool()?,
            6 => opts.empty_namespaces.push(is.read_string()?),
            7 => opts.cgroups_mode = is.read_string()?,
            8 => opts.image_path = is.read_string()?,
            9 => opts.work_path = is.read_string()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(opts)
}

/// The options `any` holds (the defaults when containerd sent none).
pub fn from_any(any: Option<&Any>) -> Result<Options, OptionsError> {
    match any {
        None => Ok(Options::default()),
        Some(any) if any.type_url.is_empty() && any.value.is_empty() => Ok(Options::default()),
        Some(any) if any.type_url.ends_with(CRI_OPTIONS) => Ok(Options::default()),
        Some(any) if any.type_url.ends_with(RUNC_OPTIONS) => {
            Ok(Options::parse_from_bytes(&any.value)?)
        }
        Some(any) if any.type_url.ends_with(LEGACY_OPTIONS) => Ok(from_legacy(&any.value)?),
        Some(any) => Err(OptionsError::Type(any.type_url.clone())),
    }
}

/// runc v1's CreateOptions as the options they share (by their field
/// numbers in runctypes' runc.proto); the rest (checkpoint settings of
/// runc v1) does not apply here.
fn from_legacy(bytes: &[u8]) -> protobuf::Result<Options> {
    let mut opts = Options::default();
    each_field(bytes, |field, is| {
        match field {
            1 => opts.no_pivot_root = is.read_bool()?,
            8 => opts.no_new_keyring = is.read_bool()?,
            9 => opts.shim_cgroup = is.read_string()?,
            10 => opts.io_uid = is.read_uint32()?,
            11 => opts.io_gid = is.read_uint32()?,
            12 => opts.criu_work_path = is.read_string()?,
            13 => opts.criu_image_path = is.read_string()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(opts)
}

/// Reads a message field by field: `read` takes the field it knows (by
/// number) and says so; the others are skipped.
fn each_field(
    bytes: &[u8],
    mut read: impl FnMut(u32, &mut CodedInputStream) -> protobuf::Result<bool>,
) -> protobuf::Result<()> {
    let mut is = CodedInputStream::from_bytes(bytes);
    while let Some(tag) = is.read_raw_tag_or_eof()? {
        if !read(tag >> 3, &mut is)? {
            protobuf::rt::skip_field_for_tag(tag, &mut is)?;
        }
    }
    Ok(())
}

/// The `Any` a serialized stdin holds (None when stdin was empty).
pub fn any_from_bytes(bytes: &[u8]) -> Result<Option<Any>, OptionsError> {
    match bytes.is_empty() {
        true => Ok(None),
        false => Ok(Some(Any::parse_from_bytes(bytes)?)),
    }
}

/// Whether `any` is runtime options this shim reads (containerd 2.3 puts
/// them among other extensions of its start-up message).
pub fn is_runtime_options(any: &Any) -> bool {
    [RUNC_OPTIONS, CRI_OPTIONS, LEGACY_OPTIONS]
        .iter()
        .any(|t| any.type_url.ends_with(t))
}

/// The options `start` was given. What it cannot read means the defaults,
/// which only leave the shim's cgroup as it is: Create reads the options
/// again and refuses, by name, those that are wrong.
pub fn at_start(any: Option<&Any>) -> Options {
    from_any(any).unwrap_or_default()
}

/// `options` as containerd's typeurl encodes them.
pub fn runc_any(options: &Options) -> Any {
    Any {
        type_url: RUNC_OPTIONS.to_owned(),
        value: options.write_to_bytes().unwrap(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_reads_runc_options_and_passes_over_anything_else() {
        let opts = Options {
            shim_cgroup: "/berth/shim".into(),
            ..Default::default()
        };
        assert_eq!(at_start(Some(&runc_any(&opts))), opts);
        assert_eq!(at_start(None), Options::default());
        let other = Any {
            type_url: "io.example.Options".into(),
            ..Default::default()
        };
        assert!(!is_runtime_options(&other));
        assert_eq!(at_start(Some(&other)), Options::default());
    }

    #[test]
    fn runc_options_are_read_and_others_refused() {
        let opts = Options {
            shim_cgroup: "/berth/shim".into(),
            io_uid: 1000,
            ..Default::default()
        };
        let bytes = runc_any(&opts).write_to_bytes().unwrap();
        let any = any_from_bytes(&bytes).unwrap();
        assert_eq!(from_any(any.as_ref()).unwrap(), opts);
        assert_eq!(any_from_bytes(b"").unwrap(), None);
        assert_eq!(from_any(None).unwrap(), Options::default());
        let cri = Any {
            type_url: CRI_OPTIONS.into(),
            value: b"\x0a\x01x".to_vec(),
            ..Default::default()
        };
        assert_eq!(from_any(Some(&cri)).unwrap(), Options::default());
        // CreateOptions{terminal: true, empty_namespaces: ["x"], no_new_keyring: true, io_uid: 7}
        let legacy = Any {
            type_url: LEGACY_OPTIONS.into(),
            value: b"\x20\x01\x32\x01x\x40\x01\x50\x07".to_vec(),
            ..Default::default()
        };
        let want = Options {
            no_new_keyring: true,
            io_uid: 7,
            ..Default::default()
        };
        assert_eq!(from_any(Some(&legacy)).unwrap(), want);
        let other = Any {
            type_url: "io.example.Options".into(),
            ..Default::default()
        };
        let err = from_any(Some(&other)).unwrap_err().to_string();
        assert!(err.contains("io.example.Options"), "{err}");
    }

    #[test]
    fn checkpoint_options_are_read_by_their_field_numbers() {
        // {exit: true, empty_namespaces: ["network"], cgroups_mode: "soft", work_path: "/w"}
        let any = Any {
            type_url: CHECKPOINT_OPTIONS.into(),
            value: b"\x08\x01\x32\x07network\x3a\x04soft\x4a\x02/w".to_vec(),
            ..Default::default()
        };
        let want = CheckpointOptions {
            exit: true,
            empty_namespaces: vec!["network".into()],
            cgroups_mode: "soft".into(),
            work_path: "/w".into(),
            ..Default::default()
        };
        assert_eq!(checkpoint_from_any(Some(&any)).unwrap(), want);
        assert_eq!(
            checkpoint_from_any(None).unwrap(),
            CheckpointOptions::default()
        );
        let other = Any {
            type_url: RUNC_OPTIONS.into(),
            ..Default::default()
        };
        assert!(checkpoint_from_any(Some(&other)).is_err());
    }
}
