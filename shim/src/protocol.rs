//! The shim's command line as containerd uses it: `start` (run a serving
//! shim for this container's group, or find the live one, and print its
//! address), `delete` (clean up after a shim that is gone), and the
//! serving shim itself.

use crate::bundle::{write_atomically, Bundle};
use crate::container::Shared;
use crate::events::Events;
use crate::reaper::{Exit, Reaper};
use crate::service::Service;
use crate::{handshake, options};
use anyhow::{Context as _, Result};
use containerd_shim::api::{DeleteRequest, DeleteResponse, ShutdownRequest};
use containerd_shim::protos::{create_task, Client, TaskClient};
use containerd_shim::util::connect;
use containerd_shim::{ExitSignal, Flags};
use protobuf::Message;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// The fd the serving shim finds its listening socket on.
const LISTENER_FD: i32 = 3;
/// How long `delete` waits for each answer of a live shim.
const SHIM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Where containerd's event service is, for the serving shim.
const TTRPC_ADDRESS: &str = "TTRPC_ADDRESS";
/// The action the start action runs itself with (containerd never does).
pub const SERVE: &str = "serve";

/// Annotations that put containers in one shim, as containerd's runc shim
/// reads them (CRI's sandbox, or an explicit group).
const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.kubernetes.cri.sandbox-id",
    "io.containerd.runc.v2.group",
];

/// `start`: prints the address of the shim that serves this container, in
/// the form the calling containerd reads ([`handshake`]). containerd gives
/// the container's runtime options on stdin.
pub fn start(flags: &Flags) -> Result<()> {
    let bundle = Bundle::new(std::env::current_dir().context("bundle directory")?);
    let mut stdin = Vec::new();
    std::io::stdin()
        .read_to_end(&mut stdin)
        .context("read the options")?;
    let request = handshake::read(&stdin, flags, &parent_exe())?;
    let options = options::at_start(request.options.as_ref());
    let group = group_of(&bundle).unwrap_or_else(|| flags.id.clone());
    let address = socket_address(flags, &request, &group);
    let path = address.trim_start_matches("unix://");
    if let Some(listener) = listen(Path::new(path))? {
        let mut server = spawn_server(flags, &request, &address, &listener)?;
        if let Err(e) = join_shim_cgroup(&server, &options.shim_cgroup) {
            let _ = server.kill();
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    }
    write_atomically(&bundle.address_file(), address.as_bytes())
        .context("write the address file")?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&handshake::encode(&address, request.reply))?;
    stdout.flush()?;
    Ok(())
}

/// The binary that runs `start`: containerd, which execs it directly.
fn parent_exe() -> PathBuf {
    PathBuf::from(format!("/proc/{}/exe", std::os::unix::process::parent_id()))
}

/// The group's socket, in the directory containerd asked for if it did.
fn socket_address(flags: &Flags, request: &handshake::Request, group: &str) -> String {
    let opts = containerd_shim::StartOpts {
        address: flags.address.clone(),
        namespace: flags.namespace.clone(),
        socket_dir: request.socket_dir.clone(),
        ..Default::default()
    };
    opts.socket_address(group)
}

/// The group key in the bundle's config.json, if it names one.
fn group_of(bundle: &Bundle) -> Option<String> {
    let spec = bundle.config();
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|a| spec["annotations"][a].as_str().map(str::to_owned))
}

/// A listener at `path`, or None if a live shim already listens there.
/// A socket nobody answers on is a dead shim's and is replaced.
fn listen(path: &Path) -> Result<Option<UnixListener>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            std::fs::remove_file(path)
                .with_context(|| format!("remove stale {}", path.display()))?;
            Ok(Some(UnixListener::bind(path).with_context(|| {
                format!("listen at {}", path.display())
            })?))
        }
        Err(e) => Err(e).with_context(|| format!("listen at {}", path.display())),
    }
}

/// Runs this binary as the serving shim, in a session of its own with the
/// listener as fd 3 and no stdio: containerd waits for `start`'s stdout to
/// close, and the server must outlive it.
fn spawn_server(
    flags: &Flags,
    request: &handshake::Request,
    address: &str,
    listener: &UnixListener,
) -> Result<Child> {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().context("find the shim binary")?);
    cmd.args([
        "-namespace",
        &flags.namespace,
        "-id",
        &flags.id,
        "-address",
        &flags.address,
    ])
    .args(["-publish-binary", &flags.publish_binary, "-socket", address]);
    if request.debug {
        cmd.arg("-debug");
    }
    // containerd 2.3 gives its address in the bootstrap params; the server
    // reads it where older ones put it.
    if let Some(ttrpc) = &request.ttrpc_address {
        cmd.env(TTRPC_ADDRESS, ttrpc);
    }
    cmd.arg(SERVE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls setsid, dup2 and fcntl, which are
    // async-signal-safe, on an fd that stays open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(fd, LISTENER_FD) < 0 || libc::fcntl(LISTENER_FD, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context("start the shim server")
}

/// A new serving shim joins the `ShimCgroup` option's cgroup, if it names
/// one (a group's shim stays where its first container put it).
fn join_shim_cgroup(server: &Child, cgroup: &str) -> Result<()> {
    if cgroup.is_empty() {
        return Ok(());
    }
    Ok(crate::shim_cgroup::join(server.id(), cgroup)?)
}

/// `delete`: the shim serving this container is gone; force-delete it in
/// the runtime and report init's exit as the shim recorded it (killed, if
/// it never did).
pub fn delete(flags: &Flags) -> Result<()> {
    let bundle = Bundle::new(match flags.bundle.as_str() {
        "" => std::env::current_dir().context("bundle directory")?,
        b => PathBuf::from(b),
    });
    crate::container::delete_orphan(&bundle, &flags.id)?;
    crate::rootfs::unmount(&bundle.rootfs());
    end_idle_shim(&bundle, &flags.id);
    let exit = bundle.saved_exit().unwrap_or_else(|| Exit {
        status: 128 + libc::SIGKILL as u32,
        at: std::time::SystemTime::now(),
    });
    let response = DeleteResponse {
        exit_status: exit.status,
        exited_at: Some(crate::process::timestamp(&exit)).into(),
        ..Default::default()
    };
    response.write_to_writer(&mut std::io::stdout().lock())?;
    Ok(())
}

/// The shim at the bundle's address, if one still answers there, drops
/// the container (whose processes `delete_orphan` has just ended) and
/// exits if it serves nothing else: one that containerd started and then
/// lost (killed mid-create) would serve a ghost forever, and a group's
/// shim keeps serving its other containers. A socket nobody answers on is
/// a killed shim's, which could not remove it.
fn end_idle_shim(bundle: &Bundle, id: &str) {
    let Ok(address) = std::fs::read_to_string(bundle.address_file()) else {
        return;
    };
    let address = address.trim();
    let Some(client) = connect(address).ok().and_then(|fd| Client::new(fd).ok()) else {
        let _ = std::fs::remove_file(address.trim_start_matches("unix://"));
        return;
    };
    let shim = TaskClient::new(client);
    let deadline = || ttrpc::context::with_timeout(SHIM_TIMEOUT.as_nanos() as i64);
    let delete = DeleteRequest {
        id: id.to_owned(),
        ..Default::default()
    };
    // Refused where the shim never got the container: nothing to drop.
    let _ = shim.delete(deadline(), &delete);
    let shutdown = ShutdownRequest {
        id: id.to_owned(),
        ..Default::default()
    };
    if let Err(e) = shim.shutdown(deadline(), &shutdown) {
        log::warn!("ask the shim at {address} to exit if idle: {e}");
    }
}

/// The serving shim: the Task service on the inherited listener until
/// Shutdown finds no container left.
pub fn serve(flags: &Flags) -> Result<()> {
    // First, before any thread exists: the reaper blocks SIGCHLD for all.
    let reaper = Reaper::start().context("start the reaper")?;
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    // One malloc arena for all threads: each arena costs its own touched
    // pages, and the shim's threads mostly sleep (musl's malloc has one).
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1)
    };
    let _ = crate::fifo_log::init(flags.debug);
    let ttrpc_address = std::env::var(TTRPC_ADDRESS).context("TTRPC_ADDRESS is not set")?;
    let shared = Arc::new(Shared {
        namespace: flags.namespace.clone(),
        reaper,
        events: Events::start(ttrpc_address, flags.namespace.clone()),
    });
    let exit = Arc::new(ExitSignal::default());
    let service = Service::new(Arc::clone(&shared), Arc::clone(&exit));
    let task: Arc<dyn containerd_shim::Task + Send + Sync> = Arc::new(service);
    // Few threads: one request at a time per connection is containerd's
    // pattern; a blocking Wait makes the pool grow by one.
    let mut server = ttrpc::Server::new()
        .set_thread_count_default(2)
        .set_thread_count_min(1)
        .set_thread_count_max(4)
        .add_listener(LISTENER_FD)?
        .register_service(create_task(Arc::clone(&task)))
        .register_service(task_v2(task));
    server.start()?;
    exit.wait();
    server.shutdown();
    shared.events.flush();
    let _ = std::fs::remove_file(flags.socket.trim_start_matches("unix://"));
    Ok(())
}

/// The same methods under `containerd.task.v2.Task`, the name containerd
/// 1.6 and 1.7 call, and 2.x when `start` offered no version (it calls
/// `v3`, which the protos generate, when offered 3); the messages are the
/// same on the wire.
fn task_v2(
    task: Arc<dyn containerd_shim::Task + Send + Sync>,
) -> HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    create_task(task)
        .into_iter()
        .map(|(path, handler)| (path.replacen(".task.v3.", ".task.v2.", 1), handler))
        .collect()
}
