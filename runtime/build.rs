//! Records the commit berth is built from, for `berth --version` (runc's
//! `commit:` line, which bug reports and `podman info` quote), and has the
//! linker put the functions of berth.order first in a release build (see
//! hack/layout.py: a run maps one run of pages instead of most of the text).

fn main() {
    println!("cargo:rerun-if-changed=berth.order");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        let order = concat!(env!("CARGO_MANIFEST_DIR"), "/berth.order");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        // Names the build no longer has (hack/bench counts them) are skipped.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
}
