//! config.json as a caller could write it: berth parses it, validates it,
//! plans the namespaces, compiles the seccomp profile and turns the
//! resources into cgroup writes, all before anything exists on the host.
//! None of it may panic: bad input is an error naming the field.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = berth::spec::parse(data) else {
        return;
    };
    if berth::spec::validate(&spec).is_err() {
        return;
    }
    let linux = spec.linux().as_ref();
    let _ = berth::namespaces::Plan::from_spec(linux);
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        let _ = berth::seccomp::compile(s);
    }
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        let _ = berth::cgroups::writes::v1(r);
        let _ = berth::cgroups::writes::v2(r);
    }
});
