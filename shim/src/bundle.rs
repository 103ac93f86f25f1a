//! A container's bundle directory: what containerd puts there (config.json,
//! rootfs), what the runtime writes (pid files, its log), and what the
//! shim keeps there for `shim delete`, a fresh process that runs after the
//! serving shim is gone (the runtime's options, init's exit).

use crate::reaper::Exit;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// The runtime's options, as `shim delete` needs them to find the runtime.
const RUNTIME_FILE: &str = "berth-runtime.json";
/// Init's exit as the shim reported it.
const EXIT_FILE: &str = "berth-exit.json";

#[derive(Clone, Debug)]
pub struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    pub fn new(dir: impl Into<PathBuf>) -> Bundle {
        Bundle { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// config.json as JSON (null when it cannot be read): the shim reads
    /// only a few fields of it, as containerd's runc shim does.
    pub fn config(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("config.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Where `start` writes the shim's address for containerd.
    pub fn address_file(&self) -> PathBuf {
        self.dir.join("address")
    }

    /// The runtime's `--log`: containerd's runc shim keeps it here too.
    pub fn runtime_log(&self) -> PathBuf {
        self.dir.join("log.json")
    }

    pub fn init_pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    /// The runtime-spec process an exec is started with, and its pid file.
    pub fn exec_files(&self, exec_id: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("berth-exec-{exec_id}.json")),
            self.dir.join(format!("berth-exec-{exec_id}.pid")),
        )
    }

    pub fn save_runtime(&self, options: &[u8]) -> std::io::Result<()> {
        write_atomically(&self.dir.join(RUNTIME_FILE), options)
    }

    /// The options `save_runtime` kept, if the runtime may still hold the
    /// container.
    pub fn saved_runtime(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(RUNTIME_FILE)).ok()
    }

    /// Once the runtime holds nothing of the container, `shim delete` need
    /// not ask it again.
    pub fn forget_runtime(&self) {
        let _ = std::fs::remove_file(self.dir.join(RUNTIME_FILE));
    }

    pub fn save_exit(&self, exit: &Exit) -> std::io::Result<()> {
        let at = exit.since_epoch();
        let json = serde_json::json!({
            "status": exit.status,
            "seconds": at.as_secs(),
            "nanos": at.subsec_nanos(),
        });
        write_atomically(&self.dir.join(EXIT_FILE), json.to_string().as_bytes())
    }

    pub fn saved_exit(&self) -> Option<Exit> {
        let text = std::fs::read(self.dir.join(EXIT_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        let at = Duration::new(v["seconds"].as_u64()?, v["nanos"].as_u64()? as u32);
        Some(Exit {
            status: v["status"].as_u64()? as u32,
            at: UNIX_EPOCH + at,
        })
    }
}

pub use berth::files::write_atomically;

/// The pid a runtime wrote to `pid_file`.
pub fn read_pid(pid_file: &Path) -> std::io::Result<u32> {
    let text = std::fs::read_to_string(pid_file)?;
    text.trim()
        .parse()
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, text.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_saved_is_read_back_as_it_was() {
        let dir = std::env::temp_dir().join(format!("berth-bundle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = Bundle::new(&dir);
        assert!(bundle.saved_exit().is_none());
        let exit = Exit {
            status: 137,
            at: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        };
        bundle.save_exit(&exit).unwrap();
        let saved = bundle.saved_exit().unwrap();
        assert_eq!((saved.status, saved.at), (exit.status, exit.at));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
