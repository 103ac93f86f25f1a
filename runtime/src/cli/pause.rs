//! `berth pause` and `berth resume`: freeze and thaw a container.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn pause(root: &Path, a: Args) -> anyhow::Result<i32> {
    berth::control::pause(root, &a.id)?;
    Ok(0)
}

pub fn resume(root: &Path, a: Args) -> anyhow::Result<i32> {
    berth::control::resume(root, &a.id)?;
    Ok(0)
}
