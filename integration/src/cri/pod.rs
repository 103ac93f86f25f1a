//! A pod of a scenario, made as kubelet makes one (RunPodSandbox with a
//! name, uid, log directory and cgroup parent of its own, then
//! CreateContainer and StartContainer in it), stopped and removed on drop
//! so that a failed scenario does not leak into the next.

use super::{Cri, Input, CRI_IMAGE};
use crate::exec::{self, Out};
use crate::leftovers::{self, DAEMON_GRACE};
use crate::Value;
use k8s_cri::v1 as cri;
use std::cell::RefCell;
use std::path::PathBuf;
use tonic::Status;

pub struct Pod<'a> {
    pub cri: &'a Cri,
    pub id: String,
    pub config: cri::PodSandboxConfig,
    /// The pod's network namespace (none with the node's network).
    pub netns: Option<PathBuf>,
    /// Every container created in the pod, for the leftover checks.
    containers: RefCell<Vec<String>>,
}

/// A container of a [`Pod`].
pub struct Ctr<'a> {
    pub pod: &'a Pod<'a>,
    pub id: String,
}

/// What kubelet asks of every container's namespaces by default: the
/// pod's network and IPC, a PID namespace of its own.
fn default_namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod.into(),
        pid: cri::NamespaceMode::Container.into(),
        ipc: cri::NamespaceMode::Pod.into(),
        ..Default::default()
    }
}

impl Cri {
    /// A sandbox config as kubelet writes one, with a unique name and uid.
    pub fn pod_config(&self) -> cri::PodSandboxConfig {
        let uid = crate::unique_name();
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: uid.clone(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "berth-pod".into(),
            log_directory: self.dir.join("pods").join(&uid).display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("/berth-cri-{uid}"),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(default_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox with `config` on the handler under test.
    pub fn run_pod(&self, config: cri::PodSandboxConfig) -> Result<Pod<'_>, Status> {
        std::fs::create_dir_all(&config.log_directory).expect("create the pod's log directory");
        let request = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: self.handler.name.into(),
        };
        let id = self
            .call(self.runtime().run_pod_sandbox(request))?
            .pod_sandbox_id;
        let mut pod = Pod {
            cri: self,
            id,
            config,
            netns: None,
            containers: RefCell::default(),
        };
        pod.netns = pod.netns_path();
        Ok(pod)
    }

    /// A pod of the default config, running.
    #[track_caller]
    pub fn pod(&self) -> Pod<'_> {
        self.run_pod(self.pod_config()).expect("RunPodSandbox")
    }
}

impl<'a> Pod<'a> {
    /// The marker variable every container of the pod has in its
    /// environment, so that its processes can be found.
    fn marker(&self) -> cri::KeyValue {
        cri::KeyValue {
            key: "BERTH_IT".into(),
            value: self.id.clone(),
        }
    }

    /// A container config as kubelet writes one: the busybox image,
    /// `command`, a log path under the pod's log directory, the pod's
    /// namespaces.
    pub fn container_config(&self, name: &str, command: &[&str]) -> cri::ContainerConfig {
        let namespaces = self.config.linux.as_ref().and_then(|l| {
            let context = l.security_context.as_ref()?;
            context.namespace_options.clone()
        });
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: CRI_IMAGE.into(),
                ..Default::default()
            }),
            command: command.iter().map(|a| a.to_string()).collect(),
            envs: vec![self.marker()],
            log_path: format!("{name}/0.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources::default()),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: namespaces,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// CreateContainer with `config` in the pod.
    pub fn create(&'a self, config: cri::ContainerConfig) -> Result<Ctr<'a>, Status> {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: self.id.clone(),
            config: Some(config),
            sandbox_config: Some(self.config.clone()),
        };
        let id = self
            .cri
            .call(self.cri.runtime().create_container(request))?;
        self.containers.borrow_mut().push(id.container_id.clone());
        Ok(Ctr {
            pod: self,
            id: id.container_id,
        })
    }

    /// CreateContainer and StartContainer with `config`, asserting both.
    #[track_caller]
    pub fn start(&'a self, config: cri::ContainerConfig) -> Ctr<'a> {
        let c = self.create(config).expect("CreateContainer");
        let request = cri::StartContainerRequest {
            container_id: c.id.clone(),
        };
        self.cri
            .call(self.cri.runtime().start_container(request))
            .expect("StartContainer");
        c
    }

    /// A started container of the default config that runs `command`.
    #[track_caller]
    pub fn run(&'a self, command: &[&str]) -> Ctr<'a> {
        self.start(self.container_config("c", command))
    }

    /// PodSandboxStatus, and its verbose `info` (containerd's JSON: pid,
    /// runtime spec, handler).
    pub fn status(&self) -> (cri::PodSandboxStatus, Value) {
        let request = cri::PodSandboxStatusRequest {
            pod_sandbox_id: self.id.clone(),
            verbose: true,
        };
        let response = self
            .cri
            .call(self.cri.runtime().pod_sandbox_status(request))
            .expect("PodSandboxStatus");
        (response.status.expect("a status"), info_of(&response.info))
    }

    /// The sandbox container's process (the pause process), the host's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.cri
            .keeper()
            .host_pid(pid_in(&self.status().1))
            .expect("the pod's process")
    }

    /// The network namespace the sandbox's spec names.
    fn netns_path(&self) -> Option<PathBuf> {
        let spec = &self.status().1["runtimeSpec"];
        let namespaces = spec["linux"]["namespaces"].as_array()?;
        let network = namespaces.iter().find(|n| n["type"] == "network")?;
        Some(PathBuf::from(network["path"].as_str()?))
    }

    /// StopPodSandbox and RemovePodSandbox, asserting both.
    #[track_caller]
    pub fn stop_and_remove(&self) {
        let id = self.id.clone();
        let stop = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        };
        self.cri
            .call(self.cri.runtime().stop_pod_sandbox(stop))
            .expect("StopPodSandbox");
        let remove = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
        self.cri
            .call(self.cri.runtime().remove_pod_sandbox(remove))
            .expect("RemovePodSandbox");
    }

    /// Asserts that nothing of the pod is left: not listed by CRI, no
    /// shim, no process of its containers, no mount, cgroup, runtime
    /// state or bundle named after the sandbox or a container, no network
    /// namespace.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        let what = format!("pod {}", self.id);
        leftovers::assert_none_left(&what, DAEMON_GRACE, || self.leftovers());
    }

    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let listed = self
            .cri
            .call(
                self.cri
                    .runtime()
                    .list_pod_sandbox(cri::ListPodSandboxRequest::default()),
            )
            .expect("ListPodSandbox");
        if listed.items.iter().any(|p| p.id == self.id) {
            found.push("sandbox in ListPodSandbox".to_owned());
        }
        let marker = format!("BERTH_IT={}", self.id);
        found.extend(leftovers::marked(&marker));
        let mut ids = self.containers.borrow().clone();
        ids.push(self.id.clone());
        for id in &ids {
            found.extend(self.leftovers_of(id));
        }
        if let Some(netns) = self.netns.as_ref().filter(|p| p.exists()) {
            found.push(format!("network namespace {}", netns.display()));
        }
        found
    }

    /// What is left under container (or sandbox) `id`'s name.
    fn leftovers_of(&self, id: &str) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(pid) = leftovers::shim_of(id) {
            found.push(format!("shim process {pid}"));
        }
        found.extend(
            leftovers::mounts_naming(id, &self.cri.keeper().mountinfo())
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        let cgroups = leftovers::cgroups_named(id).into_iter();
        found.extend(cgroups.map(|c| format!("cgroup {}", c.display())));
        let bundle = self
            .cri
            .dir
            .join("state/io.containerd.runtime.v2.task/k8s.io");
        let state = self.cri.keeper().host_path(&self.cri.runtime_root).join(id);
        for dir in [bundle.join(id), state] {
            if dir.exists() {
                found.push(format!("directory {}", dir.display()));
            }
        }
        found
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        let stop = cri::StopPodSandboxRequest {
            pod_sandbox_id: self.id.clone(),
        };
        let _ = self.cri.call(self.cri.runtime().stop_pod_sandbox(stop));
        let remove = cri::RemovePodSandboxRequest {
            pod_sandbox_id: self.id.clone(),
        };
        let _ = self.cri.call(self.cri.runtime().remove_pod_sandbox(remove));
        remove_cgroup_parent(&self.config);
    }
}

impl Ctr<'_> {
    /// Exec of `cmd` through the streaming server, as `kubectl exec` runs
    /// it: with a terminal if `input` has a size, stdin open if it has
    /// any; its exit code and output.
    pub fn exec_streaming(&self, cmd: &[&str], input: Input) -> Result<Out, String> {
        let request = cri::ExecRequest {
            container_id: self.id.clone(),
            cmd: cmd.iter().map(|a| a.to_string()).collect(),
            tty: input.terminal.is_some(),
            stdin: !input.stdin.is_empty(),
            stdout: true,
            // A terminal has one output stream.
            stderr: input.terminal.is_none(),
        };
        let cri = self.pod.cri;
        let url = cri
            .call(cri.runtime().exec(request))
            .map_err(|e| e.to_string())?
            .url;
        cri.in_netns(move || super::stream::exec(&url, input))
    }

    /// Attach to the container's stdio through the streaming server, as
    /// `kubectl attach -i` does (the container's config must open its
    /// stdin), sending `input`: what it prints until its output ends.
    pub fn attach(&self, input: Input) -> Result<Out, String> {
        let request = cri::AttachRequest {
            container_id: self.id.clone(),
            stdin: true,
            tty: false,
            stdout: true,
            stderr: true,
        };
        let cri = self.pod.cri;
        let url = cri
            .call(cri.runtime().attach(request))
            .map_err(|e| e.to_string())?
            .url;
        cri.in_netns(move || super::stream::attach(&url, input))
    }

    /// ExecSync of `cmd`, as an [`Out`] (exit code, stdout, stderr).
    pub fn exec(&self, cmd: &[&str]) -> Out {
        let request = cri::ExecSyncRequest {
            container_id: self.id.clone(),
            cmd: cmd.iter().map(|a| a.to_string()).collect(),
            timeout: exec::DEADLINE.as_secs() as i64,
        };
        let r = self
            .pod
            .cri
            .call(self.pod.cri.runtime().exec_sync(request))
            .expect("ExecSync");
        Out {
            code: r.exit_code,
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
        }
    }

    /// ContainerStatus, and its verbose `info` (containerd's JSON).
    pub fn status(&self) -> (cri::ContainerStatus, Value) {
        let request = cri::ContainerStatusRequest {
            container_id: self.id.clone(),
            verbose: true,
        };
        let r = self
            .pod
            .cri
            .call(self.pod.cri.runtime().container_status(request))
            .expect("ContainerStatus");
        (r.status.expect("a status"), info_of(&r.info))
    }

    /// The container's init process, the host's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pod
            .cri
            .keeper()
            .host_pid(pid_in(&self.status().1))
            .expect("the container's process")
    }

    /// Waits until the container has exited, and returns its status.
    #[track_caller]
    pub fn wait_exited(&self) -> cri::ContainerStatus {
        let exited =
            |s: &cri::ContainerStatus| s.state == cri::ContainerState::ContainerExited as i32;
        let what = format!("container {} never exited", self.id);
        exec::poll(&what, || self.status().0, exited)
    }

    /// ContainerStats.
    pub fn stats(&self) -> cri::ContainerStats {
        let request = cri::ContainerStatsRequest {
            container_id: self.id.clone(),
        };
        let r = self
            .pod
            .cri
            .call(self.pod.cri.runtime().container_stats(request));
        r.expect("ContainerStats").stats.expect("stats")
    }

    /// The container's log file (the pod's log directory joined with the
    /// config's log path).
    pub fn log_path(&self) -> PathBuf {
        PathBuf::from(self.status().0.log_path)
    }
}

/// Removes the cgroup parent of a pod of `config`: kubelet makes and
/// removes it, not containerd. A v1 or hybrid host has one in each
/// hierarchy, a v2 host one at the root.
fn remove_cgroup_parent(config: &cri::PodSandboxConfig) {
    let name = config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.trim_start_matches('/'));
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return;
    };
    let root = std::path::Path::new("/sys/fs/cgroup");
    let hierarchies = std::fs::read_dir(root).into_iter().flatten().flatten();
    for dir in hierarchies.map(|e| e.path()).chain([root.to_path_buf()]) {
        let _ = std::fs::remove_dir(dir.join(name));
    }
}

/// The JSON of a verbose status's `info` entry.
fn info_of(info: &std::collections::HashMap<String, String>) -> Value {
    let text = info.get("info").expect("a verbose status has info");
    serde_json::from_str(text).expect("info is JSON")
}

fn pid_in(info: &Value) -> libc::pid_t {
    let pid = info["pid"].as_i64().expect("info has the pid");
    pid as libc::pid_t
}
