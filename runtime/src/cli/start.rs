//! `berth start`: release a created container's process.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    berth::container::start(root, &a.id)?;
    Ok(0)
}
