//! `containerd-shim-berth-v2`: the containerd shim v2 for berth (runtime
//! type `io.containerd.berth.v2`). It drives any runc-compatible binary
//! (berth by default) as containerd's runc shim does, with a smaller
//! footprint: no copy threads for plain stdio, one reaper thread, events
//! sent by one thread, and a ttrpc pool of one or two threads.

mod container;
mod events;
mod io;
mod oom;
mod process;
mod protocol;
mod reaper;
mod rootfs;
mod runtime_cli;
mod service;
mod stats;
mod tty;

fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    let result = containerd_shim::parse(&args[1..])
        .map_err(anyhow::Error::from)
        .and_then(|flags| run(&flags));
    if let Err(e) = result {
        // containerd shows this to the user when `start` or `delete` fails.
        eprintln!("containerd-shim-berth-v2: {e:#}");
        std::process::exit(1);
    }
}

fn run(flags: &containerd_shim::Flags) -> anyhow::Result<()> {
    if flags.version {
        println!(
            "containerd-shim-berth-v2 version {}",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    match flags.action.as_str() {
        "start" => protocol::start(flags),
        "delete" => protocol::delete(flags),
        protocol::SERVE => protocol::serve(flags),
        other => anyhow::bail!("unknown action {other:?}"),
    }
}
