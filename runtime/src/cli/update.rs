//! `berth update`: change a live container's resource limits, from a
//! JSON file (`-r FILE`, `-` for stdin) or from runc's flags.

use anyhow::Context;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// JSON file with linux.resources ("-" reads stdin)
    #[arg(short, long)]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub memory_swap: Option<i64>,
    #[arg(long)]
    pub memory_reservation: Option<i64>,
    #[arg(long)]
    pub kernel_memory: Option<i64>,
    #[arg(long)]
    pub kernel_memory_tcp: Option<i64>,
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_idle: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Container id
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let resources: LinuxResources = match &a.resources {
        Some(src) => serde_json::from_slice(&read_source(src)?)
            .context("--resources: not linux.resources JSON")?,
        None => serde_json::from_value(from_flags(&a))?,
    };
    berth::control::update(root, &a.id, &resources)?;
    Ok(0)
}

fn read_source(src: &str) -> anyhow::Result<Vec<u8>> {
    if src == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(src).with_context(|| format!("read {src}"))
}

/// The flags as a linux.resources object, leaving out what was not given.
fn from_flags(a: &Args) -> Value {
    let mut r = json!({
        "memory": {"limit": a.memory, "swap": a.memory_swap, "reservation": a.memory_reservation,
                   "kernel": a.kernel_memory, "kernelTCP": a.kernel_memory_tcp},
        "cpu": {"shares": a.cpu_shares, "quota": a.cpu_quota, "period": a.cpu_period,
                "burst": a.cpu_burst, "realtimeRuntime": a.cpu_rt_runtime,
                "realtimePeriod": a.cpu_rt_period, "idle": a.cpu_idle,
                "cpus": a.cpuset_cpus, "mems": a.cpuset_mems},
        "pids": a.pids_limit.map(|l| json!({"limit": l})),
        "blockIO": {"weight": a.blkio_weight},
    });
    prune(&mut r);
    r
}

/// Drops nulls and the objects they leave empty.
fn prune(v: &mut Value) {
    if let Value::Object(m) = v {
        m.values_mut().for_each(prune);
        m.retain(|_, x| !x.is_null() && !x.as_object().is_some_and(|o| o.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    #[test]
    fn flags_become_resources() {
        let t = T::parse_from([
            "x",
            "--memory",
            "100",
            "--pids-limit=5",
            "--cpuset-cpus",
            "0",
            "c1",
        ]);
        assert_eq!(
            from_flags(&t.a),
            json!({"memory": {"limit": 100}, "cpu": {"cpus": "0"}, "pids": {"limit": 5}})
        );
    }
}
