//! `berth checkpoint` and `berth restore`: CRIU is not supported yet. The
//! commands exist so that a caller (containerd's checkpoint, podman's
//! `container checkpoint`) gets a refusal that names the container.

use anyhow::bail;

#[derive(clap::Args)]
pub struct Args {
    /// runc's options (--image-path, --work-path, ...) and the container id
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(verb: &str, a: Args) -> anyhow::Result<i32> {
    let id = a.args.last().map_or("", String::as_str);
    bail!("{verb} {id}: checkpoint and restore need CRIU, which berth does not support yet")
}
