//! `berth state`: print a container's state as JSON.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let view = berth::container::state(root, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(0)
}
