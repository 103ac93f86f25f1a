//! `berth`: the runc-compatible command line over the berth library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
