//! `containerd-shim-berth-v2`: the containerd shim v2 for berth (runtime
//! type `io.containerd.berth.v2`). It drives any runc-compatible binary
//! (berth by default) as containerd's runc shim does, with a smaller
//! footprint: no copy threads for plain stdio, one reaper thread, events
//! sent by one thread, and a ttrpc pool of one or two threads.

mod bundle;
mod container;
mod events;
mod fifo_log;
mod go_build;
mod handshake;
mod info;
mod io;
mod oom;
mod options;
mod process;
mod protocol;
mod reaper;
mod rootfs;
mod runtime_cli;
mod service;
mod shim_cgroup;
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
    if flags.info {
        return print_info();
    }
    match flags.action.as_str() {
        "start" => protocol::start(flags),
        "delete" => protocol::delete(flags),
        protocol::SERVE => protocol::serve(flags),
        other => anyhow::bail!("unknown action {other:?}"),
    }
}

/// `-info`: the options on stdin, the runtime info on stdout.
fn print_info() -> anyhow::Result<()> {
    use protobuf::Message;
    use std::io::{Read, Write};
    let mut stdin = Vec::new();
    std::io::stdin().read_to_end(&mut stdin)?;
    let binary = std::env::current_exe()?;
    let info = info::info(&binary, &stdin)?;
    let mut stdout = std::io::stdout().lock();
    info.write_to_writer(&mut stdout)?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The command lines containerd 1.6 and 2.x give the shim.
    #[test]
    fn every_flag_containerd_passes_is_understood() {
        let common = ["-namespace", "ns", "-address", "/run/c.sock"];
        let start_16 = [
            &common[..],
            &["-publish-binary", "/bin/c", "-id", "x", "start"],
        ]
        .concat();
        let start_2x = [
            &common[..],
            &["-publish-binary", "/bin/c", "-id", "x", "-debug", "start"],
        ]
        .concat();
        let delete = [
            &common[..],
            &["-id", "x", "-bundle", "/b", "-debug", "delete"],
        ]
        .concat();
        for args in [start_16, start_2x, delete] {
            let flags = containerd_shim::parse(&args).unwrap();
            assert_eq!((flags.namespace.as_str(), flags.id.as_str()), ("ns", "x"));
            assert_eq!(flags.address, "/run/c.sock");
        }
        assert!(containerd_shim::parse(&["-info"]).unwrap().info);
        assert!(containerd_shim::parse(&["-v"]).unwrap().version);
        let serve = ["-socket", "unix:///s", "-id", "x", super::protocol::SERVE];
        let flags = containerd_shim::parse(&serve).unwrap();
        assert_eq!(
            (flags.socket.as_str(), flags.action.as_str()),
            ("unix:///s", "serve")
        );
    }
}
