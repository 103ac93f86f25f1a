//! `berth start`: release a created container's process.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

/// A failing poststart hook is a warning, as the runtime spec says.
pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    for e in berth::container::start(root, &a.id)? {
        berth::logging::warn(&e.to_string());
    }
    Ok(0)
}
