// Included by the build scripts of berth and of the shim: has the linker
// put the functions `file` (beside Cargo.toml, written by hack/layout)
// names first in a release build, so that a run maps one stretch of pages
// instead of most of the text (hack/layout.py says why).
fn link_order(file: &str) {
    println!("cargo:rerun-if-changed={file}");
    // Only lld reads the file: rustc links with its own lld on this target
    // alone (since 1.90); others, musl among them, use the system's ld.
    let lld = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if lld && std::env::var("PROFILE").as_deref() == Ok("release") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/{file}");
        // Names the build no longer has (hack/bench counts them) are skipped.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
