//! `berth create`: set up a container and park its process until `start`.

use super::Globals;
use berth::container::{self, CreateOpts};
use std::path::PathBuf;

/// The flags `create` and `run` share.
#[derive(clap::Args)]
pub struct CommonOpts {
    /// Path to the bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the master of the container's terminal
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container process's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Move the rootfs to / and chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Unix socket that receives a pidfd of the container's process
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
}

impl CommonOpts {
    pub fn to_create(&self, g: &Globals, id: &str) -> CreateOpts {
        CreateOpts {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            root: g.root.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            activation_fds: berth::fds::activation(),
            preserve_fds: self.preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
            rootless: g.rootless,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub opts: CommonOpts,
    /// Container id
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<i32> {
    let state = container::create(&a.opts.to_create(g, &a.id), None)?;
    hand_pidfd(&a.opts, g, &a.id, state.pid)?;
    Ok(0)
}

/// `--pidfd-socket`: a container whose pidfd cannot be handed over is
/// deleted again, as runc fails then.
pub fn hand_pidfd(opts: &CommonOpts, g: &Globals, id: &str, pid: i32) -> anyhow::Result<()> {
    let Some(socket) = &opts.pidfd_socket else {
        return Ok(());
    };
    berth::fdpass::send_pidfd(socket, pid).map_err(|e| {
        let _ = container::delete(&g.root, id, true);
        anyhow::anyhow!("--pidfd-socket {}: {e}", socket.display())
    })
}
