//! What the Docker and podman suites share: an engine's client (docker or
//! podman, on the host or in a stack's jail, see [`crate::stack`]) and the
//! container of one scenario.

use crate::containerd::{logs_in, rootfs_layer, Keeper, IMAGE, IMAGE_PATH};
use crate::exec::{self, Out};
use crate::leftovers::DAEMON_GRACE;
use crate::stack::Jail;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A container engine as the scenarios drive it: through its client.
pub trait Engine: Sync {
    /// The client's command line up to its first argument.
    fn client_argv(&self) -> Vec<String>;
    /// What `run --runtime` gets.
    fn runtime(&self) -> &str;
    /// Where the runtime keeps container state, in the engine's filesystem.
    fn runtime_root(&self) -> &Path;
    /// Where the engine runs: the host, or a stack's jail.
    fn keeper(&self) -> &Keeper;
    /// The suite's directory (the same path in the jail).
    fn dir(&self) -> &Path;

    /// The id of the removed container `name`, where the engine removes its
    /// cidfile with it.
    fn removed_id(&self, _name: &str) -> Option<String> {
        None
    }

    /// The client with `args`, in the suite's directory.
    fn command(&self, args: &[&str]) -> Command {
        let argv = self.client_argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).args(args).current_dir(self.dir());
        cmd
    }

    /// Runs the client with stdin closed.
    fn cli(&self, args: &[&str]) -> Out {
        exec::run(&mut self.command(args), &self.logs())
    }

    /// The jail the engine runs in, on a stack.
    fn jail(&self) -> Option<&Jail> {
        self.keeper().jail.as_ref()
    }

    /// `program` where the engine runs: in the stack's jail, if on one.
    fn program(&self, program: &dyn AsRef<std::ffi::OsStr>) -> Command {
        self.keeper().program(program)
    }

    /// Where the host finds `path` of the engine's filesystem.
    fn host_path(&self, path: &Path) -> PathBuf {
        self.keeper().host_path(path)
    }

    /// What `GET /` on 127.0.0.1:`port` in the engine's network namespace
    /// answers, once it answers (the host's busybox wget, in that network
    /// namespace only).
    #[track_caller]
    fn http_get(&self, port: u16) -> Out {
        let url = format!("http://127.0.0.1:{port}/");
        let netns = self.keeper().ns("net");
        let fetch = || {
            let mut wget = Command::new("nsenter");
            wget.arg(format!("--net={}", netns.display()));
            wget.args(["busybox", "wget", "-q", "-O", "-", &url]);
            exec::run(&mut wget, &self.logs())
        };
        exec::poll(&format!("{url} never answered"), fetch, |o| o.code == 0)
    }

    /// Where the client's output files go.
    fn logs(&self) -> PathBuf {
        logs_in(self.dir())
    }

    /// `rm`'s flags that remove a running container at once.
    fn rm_flags(&self) -> &'static [&'static str] {
        &["-f"]
    }

    /// A container of the calling scenario.
    fn container(&self) -> Container<'_>
    where
        Self: Sized,
    {
        Container::new(self)
    }
}

/// The busybox rootfs as the engine's image: `import` of its layer, with
/// the PATH the image config would carry.
pub(crate) fn import_image(engine: &dyn Engine) {
    let layer = engine.dir().join("layer.tar");
    rootfs_layer(&layer, &engine.logs());
    let env = format!("ENV {IMAGE_PATH}");
    let layer = layer.to_str().expect("a UTF-8 path");
    engine
        .cli(&["import", "-c", &env, layer, IMAGE])
        .assert_ok();
}

/// One container of a scenario, with a unique name and the marker variable
/// in its environment (so its processes can be found), its id written to a
/// cidfile; force-removed on drop so that a failed scenario does not leak
/// into the next.
pub struct Container<'a> {
    pub name: String,
    pub engine: &'a dyn Engine,
}

impl<'a> Container<'a> {
    /// A container of the calling scenario on `engine`, with a name of its
    /// own.
    pub fn new(engine: &'a dyn Engine) -> Container<'a> {
        Container {
            name: crate::unique_name(),
            engine,
        }
    }

    /// Removes the container and checks that nothing of it is left.
    #[track_caller]
    pub fn remove(&self) {
        self.verb("rm", self.engine.rm_flags(), &[]).assert_ok();
        self.assert_no_leftovers();
    }

    fn marker(&self) -> String {
        format!("BERTH_IT={}", self.name)
    }

    fn cidfile(&self) -> PathBuf {
        self.engine.logs().join(format!("{}.cid", self.name))
    }

    /// `docker run --name N --cidfile F --runtime R -e MARKER [flags...]
    /// IMAGE args...`.
    pub fn run_args(&self, flags: &[&str], args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["run", "--name", &self.name, "--cidfile"]
            .map(str::to_owned)
            .into();
        all.push(self.cidfile().display().to_string());
        all.extend(["--runtime", self.engine.runtime(), "-e", &self.marker()].map(str::to_owned));
        all.extend(flags.iter().map(|f| f.to_string()));
        all.push(IMAGE.to_owned());
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// `docker run [flags...] ... args...` to the end.
    pub fn run(&self, flags: &[&str], args: &[&str]) -> Out {
        let all = self.run_args(flags, args);
        self.engine
            .cli(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `docker run -d [flags...] ... args...`, asserting success.
    #[track_caller]
    pub fn run_detached(&self, flags: &[&str], args: &[&str]) {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        self.run(&all, args).assert_ok();
    }

    /// `docker VERB [flags...] NAME args...`.
    pub fn verb(&self, verb: &str, flags: &[&str], args: &[&str]) -> Out {
        let mut all = vec![verb];
        all.extend_from_slice(flags);
        all.push(&self.name);
        all.extend_from_slice(args);
        self.engine.cli(&all)
    }

    /// A field of `docker inspect`, by Go template.
    #[track_caller]
    pub fn inspect(&self, template: &str) -> String {
        let out = self.verb("inspect", &["-f", template], &[]);
        out.assert_ok().stdout.trim().to_owned()
    }

    /// The container's id, as the engine wrote it to the cidfile (or, once
    /// podman has removed that with the container, as its events say).
    #[track_caller]
    pub fn id(&self) -> String {
        let written = std::fs::read_to_string(self.cidfile());
        let id = written.ok().or_else(|| self.engine.removed_id(&self.name));
        id.unwrap_or_else(|| {
            panic!(
                "{}: no cidfile, and no id in the engine's events",
                self.name
            )
        })
    }

    /// The pid of the container's init that Docker reports (in dockerd's
    /// pid namespace: the jail's, on a stack).
    #[track_caller]
    pub fn docker_pid(&self) -> i64 {
        let pid = self.inspect("{{.State.Pid}}");
        pid.parse().unwrap_or_else(|_| panic!("pid {pid:?}"))
    }

    /// The host's pid of the container's init.
    #[track_caller]
    pub fn pid(&self) -> i64 {
        let pid = self.docker_pid();
        let host = self.engine.keeper().host_pid(pid as libc::pid_t);
        i64::from(host.unwrap_or_else(|| panic!("no host process is the jail's {pid}")))
    }

    /// The pid of the shim that serves the container.
    pub fn shim_pid(&self) -> Option<libc::pid_t> {
        crate::leftovers::shim_of(&self.id())
    }

    /// Polls `docker inspect` until `template` gives `want`.
    #[track_caller]
    pub fn wait_for(&self, template: &str, want: &str) {
        let what = format!("{}: {template} never became {want:?}", self.name);
        exec::poll(&what, || self.inspect(template), |got| got == want);
    }

    /// Asserts that nothing of the container is left: no container in
    /// Docker, no shim, no process of the container, no runtime state.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        crate::leftovers::assert_none_left(&self.name, DAEMON_GRACE, || self.leftovers());
    }

    /// Asserts that no process of the container runs.
    #[track_caller]
    pub fn assert_no_processes(&self) {
        crate::leftovers::assert_none_marked(&self.name, &self.marker());
    }

    fn leftovers(&self) -> Vec<String> {
        let id = self.id();
        let mut found = crate::leftovers::daemon_leftovers(&id, &self.marker());
        found.extend(crate::leftovers::naming(&id));
        let listed = self.engine.cli(&["ps", "-aq", "--no-trunc"]).stdout;
        if listed.lines().any(|l| l == id) {
            found.push("container in `ps -a`".to_owned());
        }
        let state = self.engine.host_path(self.engine.runtime_root()).join(&id);
        if state.exists() {
            found.push(format!("directory {}", state.display()));
        }
        found
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.verb("rm", &["-f"], &[]);
    }
}
