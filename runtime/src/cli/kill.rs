//! `berth kill`: signal a container's process, or all of them with `-a`.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Signal every process in the container, not only its init
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number
    #[arg(default_value = "TERM")]
    pub signal: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let sig = berth::signal::parse(&a.signal)?;
    berth::container::kill(root, &a.id, sig, a.all)?;
    Ok(0)
}
