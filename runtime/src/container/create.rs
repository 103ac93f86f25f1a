//! `create`: validate everything, make the state directory and cgroup,
//! fork the container's init and leave it parked until `start`. On any
//! failure everything made so far is undone. Should berth die half-way,
//! its record (status `creating`, the cgroup, each process as it is
//! forked) is on disk before each of them exists, for `delete --force`
//! or the next create of the id to end them; and until init is handed
//! over, it and its first stage die with berth.

use super::{run_poststop, start_time, HookState, Status};
use crate::cgroups::{self, systemd::Manager, writes, Cgroup};
use crate::error::Context;
use crate::hooks::{self, HookKind};
use crate::init::{self, InitConfig};
use crate::namespaces::{self, Plan};
use crate::netdev;
use crate::process::{self, Parent, ProcessError};
use crate::spec::{self, Bundle};
use crate::state::{self, Phase, State, StateDir};
use crate::Result;
use oci_spec::runtime::LinuxResources;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Socket-activation fds (from 3 on), passed before the preserved ones.
    pub activation_fds: u32,
    pub preserve_fds: i32,
    pub systemd_cgroup: bool,
    /// runc's rootless rules: a cgroup the caller may not make is done
    /// without, when the config neither names one nor sets a limit.
    pub rootless: bool,
}

/// Creates a container and leaves its init parked until `start`.
/// `console` overrides `--console-socket` (used by `run` to relay a tty).
pub fn create(opts: &CreateOpts, console: Option<UnixStream>) -> Result<State> {
    state::validate_id(&opts.id)?;
    // First, so that a second create of an id leaves the first's cgroup and
    // state alone, whatever else is wrong with it.
    let (dir, dead) = StateDir::create(&opts.root, &opts.id)?;
    if let Some(dead) = dead {
        super::end_dead_create(&dead)?;
        dir.clear()?;
    }
    create_checked(&dir, opts, console).inspect_err(|_| {
        let _ = dir.remove();
    })
}

/// Checks the bundle, then creates the container in `dir`.
fn create_checked(dir: &StateDir, opts: &CreateOpts, console: Option<UnixStream>) -> Result<State> {
    let mut bundle = spec::load(&opts.bundle)?;
    announce_activation(&mut bundle.spec, opts.activation_fds);
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = super::console_for(terminal, console, opts.console_socket.as_deref())?;
    let plan = Plan::from_spec(bundle.spec.linux().as_ref()).map_err(ProcessError::from)?;
    let profile = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone());
    let seccomp = profile.as_ref().map(crate::seccomp::compile).transpose()?;
    let cgroup = CgroupPlan::new(&bundle, opts)?;
    debug(
        &opts.id,
        &format!("bundle {} checked", bundle.path.display()),
    );
    create_in(dir, opts, bundle, console, &plan, &cgroup, seccomp).inspect_err(|_| {
        let _ = super::remove_cgroup(&cgroup.cgroup, cgroup.scope);
    })
}

/// The container's cgroup and everything to write into it, checked
/// before anything is created.
pub(super) struct CgroupPlan {
    pub(super) cgroup: Cgroup,
    resources: Option<LinuxResources>,
    writes: Vec<writes::Write>,
    /// pids.max, written once init is forked and parked (runc too sets
    /// limits only then): a limit of 1 would refuse the fork of init.
    pids_max: Vec<writes::Write>,
    device_rules: Vec<(bool, String)>,
    /// Under `--systemd-cgroup`, the manager whose scope the cgroup is:
    /// the caller's user manager when rootless.
    pub(super) scope: Option<Manager>,
}

impl CgroupPlan {
    pub(super) fn new(bundle: &Bundle, opts: &CreateOpts) -> Result<CgroupPlan> {
        let (id, systemd) = (opts.id.as_str(), opts.systemd_cgroup);
        let linux = bundle.spec.linux().as_ref();
        let spec_path = linux.and_then(|l| l.cgroups_path().as_deref());
        let path = match systemd {
            true => {
                let user = opts.rootless.then(|| nix::unistd::geteuid().as_raw());
                cgroups::systemd_path(spec_path, id, user)?
            }
            false => cgroups::container_path(spec_path, id)?,
        };
        let mut cgroup = Cgroup::new(path);
        reusable(&cgroup)?;
        let resources = linux.and_then(|l| l.resources().clone());
        let (pids_max, writes): (Vec<_>, Vec<_>) = cgroup
            .plan(resources.as_ref())?
            .into_iter()
            .partition(|w| w.file == "pids.max");
        // linux.devices only makes nodes: the rules alone give access, as
        // with runc (clients list what a node needs in the rules). A
        // rootless container has no devices cgroup of its own (runc skips
        // them): it can only reach the nodes its user namespace may.
        let mut device_rules = writes::device_rules(resources.as_ref());
        if opts.rootless {
            device_rules.clear();
            let asked = spec_path.is_some() || !writes.is_empty() || !pids_max.is_empty();
            if !asked && !systemd {
                cgroup = cgroup.writable_only();
            }
        }
        Ok(CgroupPlan {
            cgroup,
            resources,
            writes,
            pids_max,
            device_rules,
            scope: systemd.then_some(match opts.rootless {
                true => Manager::User,
                false => Manager::System,
            }),
        })
    }

    pub(super) fn create(&self) -> std::result::Result<(), cgroups::CgroupError> {
        self.cgroup.create(&self.writes, &self.device_rules)
    }

    /// Sets pids.max once init is the container's one process; if that
    /// fails, init is killed and reaped, so that the cgroup can go.
    fn limit_pids(&self, init: i32) -> std::result::Result<(), cgroups::CgroupError> {
        self.cgroup
            .update(&self.pids_max)
            .inspect_err(|_| process::kill_and_reap(nix::unistd::Pid::from_raw(init)))
    }
}

/// Refuses a cgroup that already holds processes (they would count as the
/// container's: killed with it, limited by it), as runc 1.2 and later do,
/// or that is frozen (init would stop in it for good).
fn reusable(cgroup: &Cgroup) -> std::result::Result<(), cgroups::CgroupError> {
    if cgroup.frozen() {
        return Err(cgroups::CgroupError::Frozen(cgroup.path.clone()));
    }
    match cgroup.pids().len() {
        0 => Ok(()),
        count => Err(cgroups::CgroupError::NotEmpty {
            path: cgroup.path.clone(),
            count,
        }),
    }
}

/// berth's answers to the container side while it is set up.
struct CreateParent<'a> {
    dir: &'a StateDir,
    state: State,
    cfg: &'a InitConfig,
    cgroup: &'a CgroupPlan,
    /// The host devices moved into the container (linux.netDevices).
    net: Option<netdev::Mover>,
}

impl Parent for CreateParent<'_> {
    fn forked(&mut self, pid: i32) -> std::result::Result<(), ProcessError> {
        self.state.pid = pid;
        self.state.pid_start = start_time(pid).unwrap_or_default();
        Ok(self.dir.save(&self.state)?)
    }

    fn map_ids(&mut self, pid: i32) -> std::result::Result<(), ProcessError> {
        Ok(namespaces::write_id_maps(
            pid,
            &self.cfg.uid_mappings,
            &self.cfg.gid_mappings,
        )?)
    }

    fn set_clocks(&mut self, pid: i32) -> std::result::Result<(), ProcessError> {
        let linux = self.cfg.spec.linux().as_ref();
        match linux.and_then(|l| l.time_offsets().as_ref()) {
            Some(offsets) => Ok(namespaces::write_time_offsets(pid, offsets)?),
            None => Ok(()),
        }
    }

    fn join_cgroup(&mut self, pid: i32) -> std::result::Result<(), ProcessError> {
        let c = self.cgroup;
        let (resources, version) = (c.resources.as_ref(), c.cgroup.version);
        let manager = c.scope.unwrap_or(Manager::System);
        cgroups::systemd::start_scope(&c.cgroup.path, pid, resources, version, manager)?;
        Ok(c.create()?)
    }

    /// Moves the spec's network devices in as soon as the container's
    /// network namespace exists, so that hooks and the process see them.
    fn place(&mut self, pid: i32) -> std::result::Result<(), ProcessError> {
        let linux = self.cfg.spec.linux().as_ref();
        if let Some(devices) = linux.and_then(|l| l.net_devices().as_ref()) {
            if !devices.is_empty() {
                self.net = Some(netdev::Mover::move_all(devices, pid)?);
            }
        }
        Ok(())
    }

    fn abandon(&mut self) {
        if let Some(net) = &mut self.net {
            net.undo();
        }
    }

    /// Runs with `pid` recorded already (see [`Parent::forked`]).
    fn runtime_hooks(&mut self, _pid: i32) -> std::result::Result<HookState, ProcessError> {
        let state = HookState::new(&self.state, Status::Creating);
        let hooks = self.state.hooks.as_ref();
        hooks::run(HookKind::Prestart, hooks, &state)?;
        hooks::run(HookKind::CreateRuntime, hooks, &state)?;
        Ok(state)
    }

    fn seccomp_listener(&mut self, pid: i32, fd: OwnedFd) -> std::result::Result<(), ProcessError> {
        let s = &self.state;
        let profile = s.seccomp.as_ref().expect("a listener comes with a profile");
        let state = HookState::new(s, Status::Creating);
        Ok(crate::seccomp::agent::send(profile, &state, pid, fd)?)
    }
}

/// Tells the process which fds are its activation sockets; the entries
/// follow the spec's env, so they win, as in runc.
fn announce_activation(spec: &mut oci_spec::runtime::Spec, count: u32) {
    if count == 0 {
        return;
    }
    if let Some(p) = spec.process_mut() {
        let env = p.env_mut().get_or_insert_with(Vec::new);
        env.extend(crate::fds::activation_env(count));
    }
}

fn create_in(
    dir: &StateDir,
    opts: &CreateOpts,
    bundle: Bundle,
    console: Option<UnixStream>,
    plan: &Plan,
    cgroup: &CgroupPlan,
    seccomp: Option<crate::seccomp::Filter>,
) -> Result<State> {
    let linux = bundle.spec.linux().as_ref();
    let state = record(dir, opts, &bundle, cgroup);
    dir.save(&state)?;
    let fifo = make_fifo(&dir.fifo_path())?;
    // Under systemd the scope (and so the cgroup) exists only once its
    // first process does: see CreateParent::join_cgroup.
    if cgroup.scope.is_none() {
        cgroup.create()?;
    }
    let cgroup_path = cgroup.cgroup.path.display();
    debug(
        &opts.id,
        &format!("state directory and cgroup {cgroup_path} made"),
    );
    let cfg = InitConfig {
        id: opts.id.clone(),
        uid_mappings: linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default(),
        gid_mappings: linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default(),
        spec: bundle.spec,
        bundle: bundle.path,
        rootfs: bundle.rootfs,
        fifo,
        console,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.activation_fds as i32 + opts.preserve_fds.max(0),
        cgroup_join: cgroup.cgroup.join_files(),
        cgroup: cgroup.cgroup.path.clone(),
        systemd_scope: cgroup.scope.is_some(),
        seccomp,
        state_dir_fd: dir.dir_fd(),
    };
    let mut parent = CreateParent {
        dir,
        state,
        cfg: &cfg,
        cgroup,
        net: None,
    };
    let launched = process::spawn(|ch| init::stage1(&cfg, plan, ch), &mut parent);
    let mut state = parent.state;
    let (pid, init) = match launched {
        Ok(launched) => launched,
        Err(e) => {
            run_poststop(&state);
            return Err(e.into());
        }
    };
    cgroup.limit_pids(pid)?;
    state.phase = Phase::Created;
    dir.save(&state)
        .inspect_err(|_| process::kill_and_reap(nix::unistd::Pid::from_raw(pid)))?;
    init.send(&crate::sync::Msg::Handover)
        .map_err(ProcessError::from)?;
    debug(&opts.id, &format!("init {pid} waits for start"));
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(state)
}

/// The first record of a container being made from `bundle`.
pub(super) fn record(
    dir: &StateDir,
    opts: &CreateOpts,
    bundle: &Bundle,
    cgroup: &CgroupPlan,
) -> State {
    let linux = bundle.spec.linux().as_ref();
    State {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        phase: Phase::Creating,
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::clock::now_rfc3339(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        hooks: bundle.spec.hooks().clone(),
        cgroup: Some(cgroup.cgroup.path.clone()),
        scope: cgroup.scope,
        seccomp: linux.and_then(|l| l.seccomp().clone()),
        memory_policy: linux.and_then(|l| l.memory_policy().clone()),
        dir: dir.path.clone(),
    }
}

fn debug(id: &str, what: &str) {
    crate::logging::debug(&format!("create {id}: {what}"));
}

fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .context(format!("mkfifo {}", path.display()))?;
    let flags =
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC;
    let opened = nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty());
    Ok(opened.context(format!("open {}", path.display()))?)
}

/// Written via a temporary file and rename, so readers never see a
/// partial pid (containerd reads it as soon as create returns).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    crate::files::write_atomically(path, pid.to_string().as_bytes())
        .context(format!("write pid file {}", path.display()))?;
    Ok(())
}
