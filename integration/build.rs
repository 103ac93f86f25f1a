//! Builds the static programs the seccomp scenarios put into a rootfs,
//! with gcc (build-essential): tests/int80.c makes a 32-bit system call,
//! tests/syscall.c makes a call by number and prints its errno. Built
//! here, on the host, so that hack/vm-test's guest, which has no
//! compiler, can use them too.

use std::path::PathBuf;
use std::process::Command;

/// Each program's source in tests/ and the variable naming its binary.
const PROGRAMS: [(&str, &str); 2] = [("int80", "BERTH_INT80"), ("syscall", "BERTH_SYSCALL")];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    for (name, var) in PROGRAMS {
        let source = format!("tests/{name}.c");
        println!("cargo:rerun-if-changed={source}");
        let out = out_dir.join(name);
        if x86_64 {
            let status = Command::new("gcc")
                .args(["-static", "-nostdlib", "-O1", "-o"])
                .arg(&out)
                .arg(&source)
                .status()
                .expect("run gcc (install build-essential)");
            assert!(status.success(), "gcc {source} failed");
        }
        println!("cargo:rustc-env={var}={}", out.display());
    }
}
