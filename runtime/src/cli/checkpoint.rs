//! `berth checkpoint` and `berth restore`, with runc's flags, over CRIU.

use super::create::CommonOpts;
use super::foreground::{console_pair, Foreground};
use super::Globals;
use berth::container::{self, CheckpointOpts, CriuOpts, RestoreOpts};
use std::path::PathBuf;

/// The flags checkpoint and restore share.
#[derive(clap::Args)]
pub struct Shared {
    /// Directory for CRIU's image files [default: ./checkpoint]
    #[arg(long)]
    pub(super) image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log [default: the image path]
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    file_locks: bool,
    /// CRIU's cgroups mode: soft, full, strict or ignore
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties (network)
    #[arg(long)]
    empty_ns: Vec<String>,
    /// Deduplicate memory pages against the parent images
    #[arg(long)]
    auto_dedup: bool,
    /// Leave memory pages to be fetched on demand
    #[arg(long)]
    lazy_pages: bool,
}

impl Shared {
    fn to_opts(&self, criu: Option<String>) -> CriuOpts {
        let cwd = std::env::current_dir().unwrap_or_default();
        CriuOpts {
            criu,
            image_path: cwd.join(self.image_path.clone().unwrap_or("checkpoint".into())),
            work_path: self.work_path.as_ref().map(|w| cwd.join(w)),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        }
    }
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub(super) shared: Shared,
    /// Directory of the previous (pre-dump) images, relative to the image path
    #[arg(long)]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub(super) leave_running: bool,
    /// Dump memory only, leaving the container running
    #[arg(long)]
    pre_dump: bool,
    /// Skip in-flight TCP connections
    #[arg(long)]
    tcp_skip_in_flight: bool,
    /// Allow one to link unlinked files back when possible
    #[arg(long)]
    link_remap: bool,
    /// ADDRESS:PORT of a CRIU page server
    #[arg(long)]
    page_server: Option<String>,
    /// fd CRIU writes to once the lazy-pages server is ready
    #[arg(long)]
    status_fd: Option<i32>,
    /// Container id
    id: String,
}

pub fn checkpoint(g: &Globals, criu: Option<String>, a: CheckpointArgs) -> anyhow::Result<i32> {
    let opts = CheckpointOpts {
        criu: a.shared.to_opts(criu),
        parent_path: a.parent_path,
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        tcp_skip_in_flight: a.tcp_skip_in_flight,
        link_remap: a.link_remap,
        page_server: a.page_server,
        status_fd: a.status_fd,
    };
    container::checkpoint(&g.root, &a.id, &opts)?;
    Ok(0)
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    shared: Shared,
    #[command(flatten)]
    opts: CommonOpts,
    /// Return once the container is restored
    #[arg(short, long)]
    detach: bool,
    /// Do not become a subreaper for the restored processes
    #[arg(long)]
    no_subreaper: bool,
    /// Accepted for runc's command line; berth applies no LSM profile of
    /// its own on restore
    #[arg(long)]
    lsm_profile: Option<String>,
    /// Accepted for runc's command line (see --lsm-profile)
    #[arg(long)]
    lsm_mount_context: Option<String>,
    /// Container id
    id: String,
}

pub fn restore(g: &Globals, criu: Option<String>, a: RestoreArgs) -> anyhow::Result<i32> {
    let opts = RestoreOpts {
        criu: a.shared.to_opts(criu),
        create: a.opts.to_create(g, &a.id),
    };
    if !a.detach && !a.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true)?;
    }
    let (ours, theirs) = console_pair(a.detach, &a.opts.console_socket)?;
    let state = container::restore(&opts, theirs)?;
    let fg = Foreground::attach(ours)?;
    if a.detach {
        return Ok(0);
    }
    let code = fg.wait(state.pid)?;
    container::delete(&g.root, &a.id, true)?;
    Ok(code)
}

#[derive(clap::Args)]
pub struct CriuActionArgs {
    id: String,
}

pub fn criu_action(root: &std::path::Path, a: CriuActionArgs) -> anyhow::Result<i32> {
    container::criu_action(root, &a.id)?;
    Ok(0)
}
