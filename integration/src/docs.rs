//! The configuration snippets of `docs/install.md`, as the suites use
//! them: each block marked `<!-- tested: NAME -->` is read from the document
//! itself, so the document cannot drift from what is tested.

use crate::workspace;
use std::path::Path;

/// Where the document installs the binaries.
const INSTALLED: &str = "/usr/local/bin";

/// The body of the fenced block after the marker `NAME`, with the install
/// directory replaced by `bin` (where the suite's build is).
#[track_caller]
pub fn snippet(name: &str, bin: &Path) -> String {
    let path = workspace().join("docs/install.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/install.md");
    let marker = format!("<!-- tested: {name} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{}: no {marker}", path.display()))
        .1;
    let body = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("{}: no fenced block after {marker}", path.display()))
        .0;
    body.replace(INSTALLED, &bin.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_the_block_after_its_marker() {
        let got = snippet("docker-daemon-json-path", Path::new("/b"));
        let json: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(json["runtimes"]["berth"]["path"], "/b/berth");
    }

    /// kubelet passes a RuntimeClass's `handler` to CRI as the runtime
    /// handler: the document's class must name the runtime its containerd
    /// configs add, the one the CRI suite's pods run on.
    #[test]
    fn the_runtime_class_names_the_containerd_configs_handler() {
        let bin = Path::new(INSTALLED);
        let class = snippet("runtimeclass", bin);
        let handler = class.lines().find_map(|l| l.strip_prefix("handler:"));
        let handler = handler.expect("a handler line").trim();
        for config in
            ["v2-cri", "v3-cri", "v2-cri-type", "v3-cri-type"].map(|v| format!("containerd-{v}"))
        {
            let table = format!(".containerd.runtimes.{handler}]");
            assert!(
                snippet(&config, bin).contains(&table),
                "{config}: no {table}"
            );
        }
        assert_eq!(handler, "berth");
    }
}
