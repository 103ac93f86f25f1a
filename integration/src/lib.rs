//! Helpers shared by the integration scenarios in `tests/`.
//!
//! The scenarios drive a real runtime binary (berth by default, or whatever
//! `BERTH_RUNTIME` names, e.g. runc to prove the scenarios honest) on busybox
//! bundles, as root, and check what the user can see: exit codes, output,
//! error messages, and that nothing is left behind.

mod bundle;
mod cgroup;
mod console;
mod containerd;
mod cri;
mod docker;
pub mod docs;
mod engine;
pub mod engine_scenarios;
mod events;
mod exec;
mod host;
pub mod leftovers;
mod netns;
mod podman;
pub mod stack;

pub use bundle::{lines_of, s, Bundle, Running};
pub use cgroup::{unified, CgroupOf};
pub use console::{in_terminal, ConsoleSocket};
pub use containerd::{containerd, private_containerd, Containerd, Keeper, Task, IMAGE, NAMESPACE};
pub use cri::{cri, Cri, Ctr, Handler, Input, Pod, CRI_IMAGE, PAUSE_IMAGE, POD_SUBNET};
pub use docker::{docker, rootless_docker, Docker};
pub use engine::{Container, Engine};
pub use events::Events;
pub use exec::{
    give_fd3, poll, receive_fd, run as run_command, run_with_stdin, wait as wait_child, Out,
    DEADLINE,
};
pub use host::{ns_inode, NsFile};
pub use podman::{podman, rootless_podman, Podman};
pub use serde_json::{json, Value};
pub use stack::{ROOTLESS_USER, SUBORDINATE};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The root of the Cargo workspace (the repository).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration/ has a parent")
}

/// Cargo's target directory, where the cached rootfs and scratch dirs live.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Where cargo put berth and the shim of this build: the directory above
/// the test binary's own `deps/`, whichever target triple and profile.
pub(crate) fn build_dir() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let deps = test.parent().expect("the test binary lives in deps/");
    deps.parent().expect("deps/ has a parent").to_path_buf()
}

/// The runtime under test: `$BERTH_RUNTIME`, else the debug build of berth.
/// Checks the prerequisites the first time it is called and panics when one
/// is missing: a missing prerequisite is a failure, never a silent skip.
pub fn runtime() -> &'static Path {
    static RUNTIME: OnceLock<PathBuf> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the integration tests run containers and need root"
        );
        let path = std::env::var_os("BERTH_RUNTIME")
            .map_or_else(|| build_dir().join("berth"), PathBuf::from);
        assert!(
            path.is_file(),
            "runtime binary {} not found: run `cargo build` or set BERTH_RUNTIME",
            path.display()
        );
        path
    })
}

/// Global flags every runtime call gets, from `$BERTH_RUNTIME_FLAGS`
/// (e.g. `--systemd-cgroup`, which hack/vm-test passes in the guest).
pub fn runtime_flags() -> Vec<String> {
    let flags = std::env::var("BERTH_RUNTIME_FLAGS").unwrap_or_default();
    flags.split_whitespace().map(str::to_owned).collect()
}

/// Whether the runtime is asked to use the systemd cgroup driver.
pub fn systemd_cgroup() -> bool {
    runtime_flags().iter().any(|f| f == "--systemd-cgroup")
}

/// Whether the runtime under test is berth (and not runc or crun).
pub fn is_berth() -> bool {
    runtime()
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("berth"))
}

/// Ends the calling test early, saying why, unless the runtime is berth.
/// The only way a scenario may be skipped: for behaviour issue 2 asks of
/// berth that runc legitimately does differently.
#[macro_export]
macro_rules! berth_only {
    ($why:expr) => {
        if !$crate::is_berth() {
            eprintln!(
                "berth-only, skipped under {}: {}",
                $crate::runtime().display(),
                $why
            );
            return;
        }
    };
}

/// Asserts that an error message mentions `needle` when the runtime is berth;
/// under another runtime it prints `why` instead. For the messages issue 2
/// asks to be clearer than runc's.
pub fn berth_message(out: &Out, needle: &str, why: &str) {
    if is_berth() {
        out.assert_mentions(needle);
    } else {
        eprintln!("berth-only message check ({needle:?}) skipped: {why}");
    }
}

/// A daemon the suite starts once, or why it cannot: under `CI=true` a
/// missing prerequisite panics, elsewhere the caller skips.
pub(crate) fn prerequisite<T>(
    cell: &'static OnceLock<Result<T, String>>,
    start: fn() -> Result<T, String>,
) -> Result<&'static T, String> {
    checked(cell.get_or_init(start).as_ref().map_err(Clone::clone))
}

/// `found`, failing the test under `CI=true` if it is an error.
pub(crate) fn checked<T>(found: Result<T, String>) -> Result<T, String> {
    if let Err(why) = &found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    }
    found
}

/// The daemon `found` holds, or (its error) the calling test skipped, saying
/// why: [`prerequisite`] has already failed it under CI.
#[macro_export]
macro_rules! or_skip {
    ($found:expr) => {
        match $found {
            Ok(daemon) => daemon,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// A name no other container of this test run has: the test's name, the
/// test process and a sequence number.
pub fn unique_name() -> String {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    format!("{}-{pid}-{seq}", bundle::test_name())
}

/// The hook kinds of the runtime spec, in the order they run.
pub const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The config.json files real clients wrote (`../shared/fixtures/configs`,
/// or `$BERTH_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("BERTH_FIXTURES").map_or_else(
        || workspace().join("../shared/fixtures/configs"),
        PathBuf::from,
    )
}

/// A busybox rootfs made once by `hack/mkrootfs` and copied into each bundle.
/// Rebuilt when the script changes; built aside and renamed into place so a
/// half-made copy is never used.
pub(crate) fn rootfs_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let script = workspace().join("hack/mkrootfs");
        let stamp = std::fs::read(&script).expect("read hack/mkrootfs");
        let dir = target_dir().join("test-rootfs");
        let stamp_file = target_dir().join("test-rootfs.stamp");
        if dir.is_dir() && std::fs::read(&stamp_file).ok().as_ref() == Some(&stamp) {
            return dir;
        }
        let fresh = target_dir().join(format!("test-rootfs.{}", std::process::id()));
        let status = Command::new(&script)
            .arg(&fresh)
            .status()
            .expect("run hack/mkrootfs");
        assert!(
            status.success(),
            "hack/mkrootfs failed (is busybox-static installed?)"
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&fresh, &dir).expect("move the rootfs into place");
        std::fs::write(&stamp_file, stamp).expect("write rootfs stamp");
        dir
    })
}

/// config.json as `<runtime> spec` writes it, made once per test process.
pub(crate) fn spec_template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("spec-template.{}", std::process::id());
        // A stack's runtime (sid's runc for the checkpoint suite) runs in
        // its chroot, which sees none of the target directory.
        let chroot = stack::chroot_of(runtime());
        let dir = match &chroot {
            Some((root, _)) => root.join("tmp").join(&name),
            None => target_dir().join(&name),
        };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create spec dir");
        let mut cmd = match &chroot {
            Some((root, inside)) => {
                let mut cmd = Command::new("chroot");
                cmd.arg(root).arg(inside).args(["spec", "--bundle"]);
                cmd.arg(Path::new("/tmp").join(&name));
                cmd
            }
            None => {
                let mut cmd = Command::new(runtime());
                cmd.arg("spec").arg("--bundle").arg(&dir);
                cmd
            }
        };
        exec::run(&mut cmd, &dir).assert_ok();
        let text =
            std::fs::read_to_string(dir.join("config.json")).expect("spec wrote config.json");
        std::fs::remove_dir_all(&dir).expect("remove spec dir");
        serde_json::from_str(&text).expect("spec output is JSON")
    })
}

/// Sets `value` at a JSON pointer such as `/linux/sysctl/kernel.msgmax`,
/// creating the objects on the way.
pub(crate) fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let mut node = doc;
    for key in pointer.trim_start_matches('/').split('/') {
        if !node.is_object() {
            *node = json!({});
        }
        node = node
            .as_object_mut()
            .unwrap()
            .entry(key.replace("~1", "/").replace("~0", "~"))
            .or_insert(Value::Null);
    }
    *node = value;
}
