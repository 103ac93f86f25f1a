//! `berth run`: create, start and (unless detached) wait for a container.

use super::create::CommonOpts;
use super::foreground::{console_pair, Foreground};
use super::Globals;
use berth::container;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub opts: CommonOpts,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Container id
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    let root = &g.root;
    let (ours, theirs) = console_pair(a.detach, &a.opts.console_socket)?;
    let state = container::create(&a.opts.to_create(g, &a.id), theirs)?;
    super::create::hand_pidfd(&a.opts, g, &a.id, state.pid)?;
    let fg = Foreground::attach(ours)?;
    if let Err(e) = container::start(root, &a.id) {
        let _ = container::delete(root, &a.id, true);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let code = fg.wait(state.pid)?;
    berth::logging::debug(&format!("run {}: init exited with {code}", a.id));
    if !a.keep {
        container::delete(root, &a.id, true)?;
        berth::logging::debug(&format!("run {}: deleted", a.id));
    }
    Ok(code)
}
