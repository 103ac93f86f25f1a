//! Command-line parsing (runc's names and flags) and dispatch. Each
//! subcommand is a thin file over a library call.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod foreground;
mod kill;
mod list;
mod pause;
mod ps;
mod relay;
mod run;
mod spec;
mod start;
mod state;
mod update;

use berth::{logging, namespaces};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth",
    about = "Open Container Initiative runtime (berth, with runc's command line)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended) [default: /run/berth,
    /// or $XDG_RUNTIME_DIR/berth when not run by root]
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write log records to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log record format
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug records too
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (a transient scope per container)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto; with `spec`, write a rootless spec
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Path to the criu binary checkpoint and restore run [default: criu]
    #[arg(long, global = true)]
    criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container, leaving its process parked until `start`
    Create(create::Args),
    /// Start a created container's process
    Start(start::Args),
    /// Create and start a container, then wait for it
    Run(run::Args),
    /// Run another process in a running container
    Exec(Box<exec::Args>),
    /// Print a container's state as JSON
    State(state::Args),
    /// Send a signal to a container's process(es)
    Kill(kill::Args),
    /// Delete a container and everything it holds
    Delete(delete::Args),
    /// List containers
    List(list::Args),
    /// Write a new config.json
    Spec(spec::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// List a container's processes
    Ps(ps::Args),
    /// Change a container's resource limits
    Update(Box<update::Args>),
    /// Show a container's resource usage and OOM events
    Events(events::Args),
    /// Print what this runtime supports (OCI features document)
    Features,
    /// Checkpoint a running container with CRIU
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a CRIU checkpoint
    Restore(Box<checkpoint::RestoreArgs>),
    /// criu's callback during a restore (its --action-script)
    #[command(hide = true)]
    CriuAction(checkpoint::CriuActionArgs),
}

impl Command {
    /// Whether the command starts processes in a container: those run from
    /// a sealed copy of berth (CVE-2019-5736).
    fn starts_processes(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    }

    /// runc's exec fails with 255, so that its own failure is never taken
    /// for the exit status of the process it was to run.
    fn failure_status(&self) -> i32 {
        match self {
            Command::Exec(_) => 255,
            _ => 1,
        }
    }

    /// How many fds from 3 on the command hands to a container's process.
    fn passed_fds(&self) -> u32 {
        let preserved = |n: i32| n.max(0) as u32;
        match self {
            Command::Create(a) => berth::fds::activation() + preserved(a.opts.preserve_fds),
            Command::Run(a) => berth::fds::activation() + preserved(a.opts.preserve_fds),
            Command::Exec(a) => preserved(a.preserve_fds),
            _ => 0,
        }
    }
}

/// The global flags a lifecycle command needs.
pub struct Globals {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// runc's reading of `--rootless`: true or false as given, otherwise
/// (auto) whether the caller is not root of the host: not root, or root
/// of a user namespace (rootless podman's runtime), which has no say over
/// the host's cgroups.
fn rootless(flag: Option<&str>) -> bool {
    match flag {
        Some("true") => true,
        Some("false") => false,
        _ => !nix::unistd::geteuid().is_root() || namespaces::in_user_namespace(),
    }
}

/// runc's default `--root`: under `$XDG_RUNTIME_DIR` for a caller who is
/// not root (who cannot write /run), or who is root of a user namespace
/// on behalf of a user (`$USER` unset or not root), else /run/berth.
fn default_root() -> PathBuf {
    let for_a_user = || {
        !nix::unistd::geteuid().is_root()
            || namespaces::in_user_namespace()
                && std::env::var_os("USER").is_none_or(|user| user != "root")
    };
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() && for_a_user() => PathBuf::from(dir).join("berth"),
        _ => "/run/berth".into(),
    }
}

/// `berth version X.Y.Z`, commit, spec: runc's layout, which docker info
/// and bug reports read.
fn version() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_COMMIT"),
        berth::OCI_VERSION
    )
}

/// Help in runc's layout (urfave/cli's), which scripts read: `NAME:` then
/// `   berth [<command>] - <about>`.
fn help(shown: &str) -> String {
    format!("NAME:\n   {shown} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}")
}

/// A flag given twice counts once, the last value winning, as with runc's
/// command line (podman passes `checkpoint --leave-running` twice).
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .help_template(help("berth"))
        .args_override_self(true)
        .mut_subcommands(|s| {
            let shown = format!("berth {}", s.get_name());
            s.help_template(help(&shown)).args_override_self(true)
        })
}

/// Parses the command line; an unknown command gets runc's words.
fn parse() -> Result<Cli, i32> {
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    parsed.map_err(
        |e| match e.get(clap::error::ContextKind::InvalidSubcommand) {
            Some(topic) => {
                eprintln!("No help topic for '{topic}'");
                1
            }
            None => e.exit(),
        },
    )
}

/// Parses, runs, and turns an error into runc's behaviour: one error
/// record in the log (the line containerd shows), the message on stderr,
/// exit status 1 (255 for exec).
pub fn main() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        print!("{}", version());
        return 0;
    }
    let failed = cli.command.as_ref().map_or(1, Command::failure_status);
    // Re-executing comes before the caller's fds are flagged close-on-exec,
    // so that the sealed copy still has them.
    let sealed = match &cli.command {
        Some(c) if c.starts_processes() => berth::sealed::ensure(),
        _ => Ok(()),
    };
    // Before the log file is opened: that one is berth's own.
    berth::fds::withhold_inherited(cli.command.as_ref().map_or(0, Command::passed_fds));
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("cannot open log file: {e}");
        return 1;
    }
    if let Err(e) = sealed {
        logging::error(&e.to_string());
        return failed;
    }
    if cli.debug && cli.command.as_ref().is_some_and(Command::starts_processes) {
        berth::sealed::describe()
            .into_iter()
            .for_each(logging::debug);
    }
    let Some(command) = cli.command else {
        let _ = command().print_help();
        return 0;
    };
    let g = Globals {
        root: cli.root.clone().unwrap_or_else(default_root),
        systemd_cgroup: cli.systemd_cgroup,
        rootless: rootless(cli.rootless.as_deref()),
    };
    let root = &g.root;
    let result = match command {
        Command::Create(a) => create::run(&g, a),
        Command::Start(a) => start::run(root, a),
        Command::Run(a) => run::run(&g, a),
        Command::Exec(a) => exec::run(&g, *a),
        Command::State(a) => state::run(root, a),
        Command::Kill(a) => kill::run(root, a),
        Command::Delete(a) => delete::run(root, a),
        Command::List(a) => list::run(root, cli.root.is_some(), a),
        Command::Pause(a) => pause::pause(root, a),
        Command::Resume(a) => pause::resume(root, a),
        Command::Ps(a) => ps::run(root, a),
        Command::Update(a) => update::run(root, *a),
        Command::Events(a) => events::run(root, a),
        Command::Features => features::run(),
        Command::Checkpoint(a) => checkpoint::checkpoint(&g, cli.criu, a),
        Command::Restore(a) => checkpoint::restore(&g, cli.criu, *a),
        Command::CriuAction(a) => checkpoint::criu_action(root, a),
        Command::Spec(a) => spec::run(a, cli.rootless.as_deref().is_some_and(|v| v != "false")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            logging::error(&msg);
            if logging::logs_to_file() {
                eprintln!("{msg}");
            }
            failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn containerd_create_call_parses() {
        let cli = parse(&[
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket=/s",
            "--no-pivot",
            "--no-new-keyring",
            "c1",
        ]);
        assert_eq!(cli.root, Some("/run/containerd/runc/default".into()));
        assert!(matches!(cli.log_format, LogFormat::Json));
        let Some(Command::Create(a)) = cli.command else {
            panic!("not create")
        };
        assert_eq!(a.id, "c1");
        assert_eq!(a.opts.bundle, PathBuf::from("/b"));
        assert_eq!(a.opts.console_socket, Some(PathBuf::from("/s")));
        assert!(a.opts.no_pivot && a.opts.no_new_keyring);
    }

    #[test]
    fn conmon_equals_forms_parse() {
        let cli = parse(&[
            "--log-format=json",
            "--log=/l",
            "create",
            "--bundle=/b",
            "--pid-file=/p",
            "x",
        ]);
        assert_eq!(cli.log, Some(PathBuf::from("/l")));
        let Some(Command::Create(a)) = cli.command else {
            panic!("not create")
        };
        assert_eq!(a.opts.pid_file, Some(PathBuf::from("/p")));
    }

    #[test]
    fn kill_defaults_to_term_and_takes_all() {
        let Some(Command::Kill(k)) = parse(&["kill", "c"]).command else {
            panic!()
        };
        assert_eq!(k.signal, "TERM");
        let Some(Command::Kill(k)) = parse(&["kill", "-a", "c", "KILL"]).command else {
            panic!()
        };
        assert!(k.all);
        assert_eq!(k.signal, "KILL");
    }

    #[test]
    fn global_flags_after_subcommand_and_rootless_value() {
        let cli = parse(&["--rootless=auto", "state", "c", "--root", "/r"]);
        assert_eq!(cli.root, Some("/r".into()));
        assert_eq!(cli.rootless.as_deref(), Some("auto"));
    }

    #[test]
    fn a_repeated_flag_counts_once() {
        let m = command().try_get_matches_from([
            "berth",
            "checkpoint",
            "--leave-running",
            "--leave-running",
            "--image-path=/a",
            "--image-path=/b",
            "c",
        ]);
        use clap::FromArgMatches;
        let Some(Command::Checkpoint(a)) = Cli::from_arg_matches(&m.unwrap()).unwrap().command
        else {
            panic!("not checkpoint")
        };
        assert!(a.leave_running);
        assert_eq!(a.shared.image_path, Some(PathBuf::from("/b")));
    }

    #[test]
    fn version_text() {
        assert!(version().starts_with("berth version "));
        assert!(version().contains("\ncommit: "));
        assert!(version().contains("\nspec: 1."));
    }
}
