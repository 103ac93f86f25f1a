//! Builds tests/int80.c, the static program the seccomp scenarios use to
//! make a 32-bit system call, with gcc (build-essential). Built here, on
//! the host, so that hack/vm-test's guest, which has no compiler, can use
//! it too.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=tests/int80.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("int80");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        let status = Command::new("gcc")
            .args(["-static", "-nostdlib", "-O1", "-o"])
            .arg(&out)
            .arg("tests/int80.c")
            .status()
            .expect("run gcc (install build-essential)");
        assert!(status.success(), "gcc tests/int80.c failed");
    }
    println!("cargo:rustc-env=BERTH_INT80={}", out.display());
}
