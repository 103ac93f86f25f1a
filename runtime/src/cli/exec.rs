//! `berth exec`: run a process in a running container, described by
//! `--process FILE` or by flags over the container's own `process`.

use super::foreground::{console_pair, Foreground};
use anyhow::{bail, Context};
use berth::capabilities;
use berth::exec::{self, ExecOpts};
use oci_spec::runtime::{Capabilities, Process, Spec};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// JSON file with the process to run (a config.json `process`)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variable (KEY=VALUE), repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// User to run as: uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Extra group id, repeatable
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Extra capability, repeatable
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no-new-privileges
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile (not supported yet)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux process label (not supported yet)
    #[arg(long)]
    pub process_label: Option<String>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the master of the process's terminal
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra fds (3 .. 3+N-1) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Unix socket that receives a pidfd of the process
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Fifo the process waits on: its program starts once the fifo is
    /// opened for reading
    #[arg(long)]
    pub exec_wait_fifo: Option<PathBuf>,
    /// Sub-cgroup of the container's to run in: PATH, or CONTROLLER[,..]:PATH
    /// (v1; repeat the flag for other controllers)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Exec even if the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(g: &super::Globals, a: Args) -> anyhow::Result<i32> {
    let root = &g.root;
    let mut process: Process = match &a.process {
        Some(file) => read_process(file)?,
        None => from_flags(root, &a)?,
    };
    if a.apparmor.is_some() {
        process.set_apparmor_profile(a.apparmor.clone());
    }
    if a.process_label.is_some() {
        process.set_selinux_label(a.process_label.clone());
    }
    if let Err((field, why)) = berth::lsm::check_process(&process, "exec") {
        bail!("{field}: {why}");
    }
    if let Err((field, why)) = berth::sched::check(&process) {
        bail!("{field}: {why}");
    }
    let (ours, theirs) = console_pair(a.detach, &a.console_socket)?;
    let opts = ExecOpts {
        process,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
        wait_fifo: a.exec_wait_fifo.as_deref().map(open_fifo).transpose()?,
        rootless: g.rootless,
    };
    let pid = exec::exec(root, &a.id, &opts, theirs)?;
    if let Some(socket) = &a.pidfd_socket {
        berth::fdpass::send_pidfd(socket, pid).map_err(|e| {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            anyhow::anyhow!("--pidfd-socket {}: {e}", socket.display())
        })?;
    }
    let fg = Foreground::attach(ours)?;
    if a.detach {
        return Ok(0);
    }
    fg.wait(pid)
}

/// The `--exec-wait-fifo` path, opened without touching the fifo (O_PATH),
/// so that only the process's own open waits for a reader.
fn open_fifo(path: &Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())
        .with_context(|| format!("--exec-wait-fifo {}", path.display()))?;
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        bail!("--exec-wait-fifo {}: is not a fifo", path.display());
    }
    Ok(fd)
}

/// `--process FILE` (also /dev/fd/N or a pipe: read once). runc takes a
/// missing `user` for root; oci-spec's type requires one, so it is put in
/// before parsing.
fn read_process(file: &Path) -> anyhow::Result<Process> {
    let data = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let mut value: serde_json::Value = serde_json::from_slice(&data)
        .with_context(|| format!("--process {}: not JSON", file.display()))?;
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("user")
            .or_insert(serde_json::json!({"uid": 0, "gid": 0}));
    }
    berth::spec::repair_process(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => String::new(),
            p => format!(": {p}"),
        };
        anyhow::anyhow!("--process {}{field}: {}", file.display(), e.inner())
    })
}

/// runc's flag form: the container's own process with the flags applied.
fn from_flags(root: &Path, a: &Args) -> anyhow::Result<Process> {
    if a.command.is_empty() {
        bail!("exec: no command given (and no --process)");
    }
    let state = berth::container::state(root, &a.id)?;
    let config = state.bundle.join("config.json");
    let data = std::fs::read(&config).with_context(|| format!("read {}", config.display()))?;
    let spec: Spec = berth::spec::parse(&data)
        .map_err(|(field, msg)| anyhow::anyhow!("{}: {field}: {msg}", config.display()))?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        // A bare uid keeps the config's gid, as with runc.
        let (uid, gid) = u
            .split_once(':')
            .map_or((u.as_str(), None), |(u, g)| (u, Some(g)));
        p.user_mut().set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: bad uid"))?,
        );
        if let Some(gid) = gid {
            p.user_mut().set_gid(
                gid.parse()
                    .with_context(|| format!("--user {u}: bad gid"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend(&a.additional_gids);
        p.user_mut().set_additional_gids(Some(gids));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        add_caps(&mut p, &a.cap);
    }
    Ok(p)
}

fn add_caps(p: &mut Process, names: &[String]) {
    let extra = capabilities::known_only(names);
    let mut caps = p.capabilities().clone().unwrap_or_default();
    let add = |set: &Option<Capabilities>| {
        Some(
            set.clone()
                .unwrap_or_default()
                .union(&extra)
                .copied()
                .collect(),
        )
    };
    // Not inheritable: a binary with inheritable file capabilities would
    // gain them as permitted at execve (runc's CVE-2022-29162). Ambient
    // caps need inheritable ones, so runc adds those only when the config
    // has an inheritable set, and so does berth.
    caps.set_bounding(add(caps.bounding()));
    caps.set_effective(add(caps.effective()));
    caps.set_permitted(add(caps.permitted()));
    if caps.inheritable().is_some() {
        caps.set_ambient(add(caps.ambient()));
    }
    p.set_capabilities(Some(caps));
}
