//! `berth delete`: remove a stopped container (`-f` kills a running one).

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    berth::container::delete(root, &a.id, a.force)?;
    Ok(0)
}
