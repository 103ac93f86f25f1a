//! A containerd with its CRI plugin, of the test suite's own, driven as
//! kubelet drives it: a gRPC client of `runtime.v1.RuntimeService` and
//! `runtime.v1.ImageService` on its socket. It runs in a network namespace
//! of its own (CNI's bridge, veths and iptables rules never touch the
//! host's network), with config, root, state, socket and CNI config under
//! one directory, a pause and a busybox image imported into `k8s.io`, and
//! two runtime handlers:
//! - `berth`: `io.containerd.runc.v2` with `runtime_path` naming berth's
//!   shim and `BinaryName` the berth binary (containerd decodes
//!   `runc.v1.Options` only for that type: the most compatible entry).
//!   containerd 1.6 ignores `runtime_path` for a pod's sandbox task, so
//!   there berth's shim also stands first on containerd's PATH as
//!   `containerd-shim-runc-v2` (see [`shim_path`]); the scenarios check
//!   which shim and runtime really serve each pod;
//! - `runc`: the stock shim and runc, to prove the scenarios honest.
//!
//! `$BERTH_CRI_HANDLER` (default `berth`) picks the one the scenarios use.

mod pod;
mod stream;

pub use pod::{Ctr, Pod};
pub use stream::Input;

use crate::containerd::{
    containerd_command, image_archive, keep, logs_in, need_root_and, wait_for_socket, Keeper,
};
use crate::docs::snippet;
use crate::exec;
use crate::netns::Netns;
use crate::target_dir;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tonic::transport::{Channel, Endpoint, Uri};

/// The image every container runs.
pub const CRI_IMAGE: &str = "berth.test/busybox:latest";
/// The image of every pod's sandbox container.
pub const PAUSE_IMAGE: &str = "berth.test/pause:latest";
/// What the pause image runs: a process that waits until it is told to
/// stop, forking once (the busybox rootfs has no pause binary).
const PAUSE: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM INT; sleep 2147483647 & wait",
];
/// containerd's namespace for CRI.
const K8S_NAMESPACE: &str = "k8s.io";
/// The pods' network, on the bridge of the suite's network namespace.
pub const POD_SUBNET: &str = "10.88.0.0/16";
/// Where Debian's containernetworking-plugins are.
const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// The runtime handler the scenarios use.
pub struct Handler {
    /// The name in containerd's config, and in `RunPodSandbox`.
    pub name: &'static str,
    /// The shim containerd starts for a pod.
    pub shim: PathBuf,
    /// The OCI runtime that shim drives.
    pub runtime: PathBuf,
    /// The docs/install.md entry that adds berth's handler to containerd's
    /// config (`containerd-v2-cri...` or `-v3-` for containerd 2.x).
    entry: &'static str,
}

pub struct Cri {
    pub dir: PathBuf,
    /// The network namespace containerd (and so CNI and the host-network
    /// pods) runs in: `/run/netns/NAME`.
    pub netns: PathBuf,
    pub handler: Handler,
    /// The runtime's `--root` that the handler's shim passes, with the
    /// namespace appended as the shims do.
    pub runtime_root: PathBuf,
    tokio: tokio::runtime::Runtime,
    channel: Channel,
    /// The shell that runs containerd (see `containerd::keep`), and its
    /// jail on a stack.
    keeper: Keeper,
}

/// The suite's CRI containerd, shared by the scenarios of this test
/// process, or why there is none (under `CI=true` a missing prerequisite
/// panics instead).
pub fn cri() -> Result<&'static Cri, String> {
    static CRI: OnceLock<Result<Cri, String>> = OnceLock::new();
    crate::prerequisite(&CRI, start)
}

/// Skips the calling test, saying why, when there is no CRI containerd
/// (and fails it under CI); else evaluates to it.
#[macro_export]
macro_rules! cri_or_skip {
    () => {
        $crate::or_skip!($crate::cri())
    };
}

fn start() -> Result<Cri, String> {
    let stack = crate::stack::under_test()?;
    match stack {
        Some(_) => need_root_and(&["tar", "sha256sum", "unshare", "nsenter"])?,
        None => {
            let bridge = format!("{CNI_BIN_DIR}/bridge");
            need_root_and(&["containerd", "ctr", "tar", "sha256sum", "ip", "nsenter"])?;
            need_root_and(&[&bridge, "/usr/sbin/runc"])
                .map_err(|e| format!("{e} (containernetworking-plugins, runc)"))?;
        }
    }
    let handler = handler_under_test()?;
    let dir = target_dir().join(format!("cri-it.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let address = write_cri_config(&dir, &handler)?;
    let keeper = match &stack {
        // The stack's jail has a network namespace of its own.
        Some(stack) => {
            let daemons = [containerd_command(&dir)];
            keep(
                &dir,
                &shim_path(&dir, &handler, true)?,
                &daemons,
                Some(stack),
            )?
        }
        None => {
            let netns = Netns::new("berth-cri")?;
            let (name, containerd) = containerd_command(&dir);
            let daemons = [netns.holder(), (name, netns.enter(&containerd))];
            let mut keeper = keep(&dir, &shim_path(&dir, &handler, false)?, &daemons, None)?;
            keeper.netns = Some(netns.path);
            keeper
        }
    };
    let netns = keeper.ns("net");
    wait_for_socket(&address)?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let channel = tokio.block_on(connect(address.clone()))?;
    let c = Cri {
        runtime_root: handler.root(&dir).join(K8S_NAMESPACE),
        dir,
        netns,
        handler,
        tokio,
        channel,
        keeper,
    };
    c.import_image(PAUSE_IMAGE, &PAUSE);
    c.import_image(CRI_IMAGE, &["sh"]);
    c.wait_until_ready();
    Ok(c)
}

/// `$BERTH_CRI_HANDLER`: `berth` (berth's entry of runc's runtime type,
/// the default), `berth-type` (berth's entry of its own runtime type,
/// `io.containerd.berth.v2`), or `runc`.
fn handler_under_test() -> Result<Handler, String> {
    let way = std::env::var("BERTH_CRI_HANDLER").unwrap_or_else(|_| "berth".into());
    let entry = match way.as_str() {
        "berth-type" => "cri-type",
        _ => "cri",
    };
    match way.as_str() {
        "runc" => Ok(Handler {
            name: "runc",
            shim: "/usr/bin/containerd-shim-runc-v2".into(),
            runtime: "/usr/sbin/runc".into(),
            entry,
        }),
        "berth" | "berth-type" => {
            let dir = crate::build_dir();
            let (shim, runtime) = (dir.join("containerd-shim-berth-v2"), dir.join("berth"));
            if let Some(missing) = [&shim, &runtime].into_iter().find(|p| !p.is_file()) {
                return Err(format!(
                    "{} not found: run `cargo build`",
                    missing.display()
                ));
            }
            Ok(Handler {
                name: "berth",
                shim,
                runtime,
                entry,
            })
        }
        other => Err(format!(
            "BERTH_CRI_HANDLER={other}: expected berth, berth-type or runc"
        )),
    }
}

impl Handler {
    /// The runtime's `--root` the handler's shim passes, before the
    /// namespace: berth's entry is the one of docs/install.md, which leaves
    /// `Root` to the shim's default.
    fn root(&self, dir: &Path) -> PathBuf {
        match self.name {
            "berth" => PathBuf::from("/run/containerd/berth"),
            name => dir.join("runtime").join(name),
        }
    }
}

/// The directory to put first on containerd's PATH: where berth's shim is
/// (for `io.containerd.berth.v2`), or containerd's own. containerd 1.6
/// (the host's) starts a pod's shim by its runtime type alone (its sandbox
/// task does not get the handler's `runtime_path`, which 1.7 and later
/// honour), so there, under handler berth, `containerd-shim-runc-v2` is
/// berth's shim: in that daemon every `io.containerd.runc.v2` entry gets
/// it.
fn shim_path(dir: &Path, handler: &Handler, on_stack: bool) -> Result<PathBuf, String> {
    match (handler.name, handler.entry) {
        ("runc", _) => return Ok(PathBuf::from("/usr/bin")),
        (_, "cri-type") => return Ok(crate::build_dir()),
        _ if on_stack => return Ok(crate::build_dir()),
        _ => {}
    }
    let shims = dir.join("shims");
    std::fs::create_dir_all(&shims)
        .and_then(|()| {
            std::os::unix::fs::symlink(&handler.shim, shims.join("containerd-shim-runc-v2"))
        })
        .map_err(|e| format!("link berth's shim into {}: {e}", shims.display()))?;
    Ok(shims)
}

/// Writes containerd's config (CRI on, both handlers, the pause image, CNI
/// from the suite's conf dir) and the CNI network under `dir`; returns the
/// socket's path. The berth handler is docs/install.md's entry for the
/// containerd under test (`version = 2` for 1.x, `3` for 2.x, whose CRI
/// plugin is split in two and names the settings apart).
/// `restrict_oom_score_adj`: CRI gives a sandbox -998, and lowering a score
/// needs CAP_SYS_RESOURCE, which root here lacks (runc and berth alike then
/// fail `create`); restricted, no score goes below containerd's own.
/// `netns_mounts_under_state_dir`: the pods' network namespaces are kept
/// under the suite's directory, not the host's /var/run/netns.
fn write_cri_config(dir: &Path, handler: &Handler) -> Result<PathBuf, String> {
    let address = dir.join("containerd.sock");
    let v3 = crate::stack::engines()?.containerd.starts_with("2.");
    let (version, runtime, images, bin_dir) = match v3 {
        true => (
            "v3",
            r#"plugins."io.containerd.cri.v1.runtime""#,
            r#"plugins."io.containerd.cri.v1.images".pinned_images"#,
            format!("bin_dirs = [\"{CNI_BIN_DIR}\"]"),
        ),
        false => (
            "v2",
            r#"plugins."io.containerd.grpc.v1.cri""#,
            r#"plugins."io.containerd.grpc.v1.cri""#,
            format!("bin_dir = \"{CNI_BIN_DIR}\""),
        ),
    };
    let sandbox = match v3 {
        true => "sandbox",
        false => "sandbox_image",
    };
    let server = "  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n";
    let pause = format!("  {sandbox} = \"{PAUSE_IMAGE}\"\n");
    let pods = "  restrict_oom_score_adj = true\n  netns_mounts_under_state_dir = true\n";
    // 1.x's CRI plugin is one table; 2.x splits it in three.
    let plugin = match v3 {
        true => format!(
            "[plugins.\"io.containerd.grpc.v1.cri\"]\n{server}[{images}]\n{pause}[{runtime}]\n{pods}"
        ),
        false => format!("[{runtime}]\n{server}{pause}{pods}"),
    };
    let runc = handler_entry(runtime, "runc", dir, Path::new("/usr/sbin/runc"));
    // The entry's `version` line goes first; its tables after their parent
    // tables (containerd 1.x's TOML parser refuses a parent defined after
    // its child).
    let entry = snippet(
        &format!("containerd-{version}-{}", handler.entry),
        &crate::build_dir(),
    );
    let (top, berth) = entry.split_once("\n[").unwrap_or((&entry, ""));
    let config = format!(
        r#"{top}
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
{plugin}[{runtime}.cni]
  {bin_dir}
  conf_dir = "{cni}"
[{runtime}.containerd]
  default_runtime_name = "runc"
{runc}
[{berth}"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        sock = address.display(),
        opt = dir.join("opt").display(),
        cni = dir.join("cni").display(),
    );
    let write = |path: PathBuf, text: String| {
        std::fs::create_dir_all(path.parent().unwrap())
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| format!("write {}: {e}", path.display()))
    };
    write(dir.join("config.toml"), config)?;
    write(dir.join("cni/10-berth.conflist"), cni_network(dir))?;
    Ok(address)
}

/// The reference handler's `runtimes.NAME` entry, under the CRI plugin's
/// table `plugin`: containerd's own shim driving `binary` with its state
/// under the suite's directory.
fn handler_entry(plugin: &str, name: &str, dir: &Path, binary: &Path) -> String {
    let table = format!("{plugin}.containerd.runtimes.{name}");
    format!(
        "[{table}]\n  runtime_type = \"io.containerd.runc.v2\"\n\
         [{table}.options]\n  BinaryName = \"{binary}\"\n  Root = \"{root}\"\n",
        binary = binary.display(),
        root = dir.join("runtime").join(name).display(),
    )
}

/// A bridge network with host-local addresses (kept under `dir`, not the
/// host's /var/lib/cni) and portmap for hostPorts. containerd itself sets
/// up each pod's `lo` with CNI's loopback plugin from the same bin_dir.
fn cni_network(dir: &Path) -> String {
    crate::json!({
        "cniVersion": "0.4.0",
        "name": "berth-cri",
        "plugins": [
            {
                "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "dataDir": dir.join("cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// A gRPC channel over containerd's unix socket (the authority is
/// ignored: the connector always dials the socket).
async fn connect(socket: PathBuf) -> Result<Channel, String> {
    let connector = tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        async move {
            Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
        }
    });
    Endpoint::from_static("http://[::]")
        .connect_with_connector(connector)
        .await
        .map_err(|e| format!("connect to CRI: {e}"))
}

impl Cri {
    /// Where containerd runs: the host, or a stack's jail.
    pub fn keeper(&self) -> &Keeper {
        &self.keeper
    }

    /// A client of the runtime service.
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    /// A client of the image service.
    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// Runs one call (a future from [`Cri::runtime`] or [`Cri::images`])
    /// to its end, returning the response's message.
    pub fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        self.tokio.block_on(call).map(tonic::Response::into_inner)
    }

    /// Where output files of the commands the suite runs go.
    pub fn logs(&self) -> PathBuf {
        logs_in(&self.dir)
    }

    /// The response to `GET /` from 127.0.0.1:`port` in the suite's
    /// network namespace, or why there is none.
    pub fn http_get(&self, port: u16) -> Result<String, String> {
        self.in_netns(move || {
            use std::io::{Read, Write};
            let timeout = std::time::Duration::from_secs(2);
            let connect =
                |()| TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), timeout);
            let get = |mut stream: TcpStream| -> std::io::Result<String> {
                stream.set_read_timeout(Some(timeout))?;
                stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut response = String::new();
                stream.read_to_string(&mut response)?;
                Ok(response)
            };
            connect(()).and_then(get).map_err(|e| e.to_string())
        })
    }

    /// `f`, run in containerd's network namespace (where the pods' ports
    /// and the streaming server are), by a thread of its own (a thread's
    /// namespace is its own).
    pub fn in_netns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let netns = std::fs::File::open(&self.netns).map_err(|e| e.to_string())?;
        let joined = std::thread::spawn(move || {
            // SAFETY: netns is an open namespace file; setns changes only
            // this thread's namespace.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            f()
        })
        .join();
        joined.expect("the thread in containerd's network namespace")
    }

    /// Imports the busybox rootfs as `tag`, with `cmd` as its command,
    /// into CRI's namespace.
    fn import_image(&self, tag: &str, cmd: &[&str]) {
        let name = tag.split(['/', ':']).nth(1).unwrap_or("image");
        let archive = image_archive(&self.dir.join(name), &self.logs(), tag, cmd);
        let mut ctr = self.keeper.program(&"ctr");
        ctr.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(["-n", K8S_NAMESPACE, "images", "import"])
            .arg(archive);
        exec::run(&mut ctr, &self.logs()).assert_ok();
    }

    /// Waits until CRI says its runtime and its network are ready (it
    /// loads the CNI config in the background).
    fn wait_until_ready(&self) {
        let ready = || {
            let status = self.call(self.runtime().status(k8s_cri::v1::StatusRequest::default()));
            let conditions = status.ok().and_then(|s| s.status).map(|s| s.conditions);
            conditions.unwrap_or_default()
        };
        let all_ready =
            |c: &Vec<k8s_cri::v1::RuntimeCondition>| !c.is_empty() && c.iter().all(|c| c.status);
        exec::poll("CRI never became ready", ready, all_ready);
    }
}
