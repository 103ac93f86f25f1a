//! `berth update`: change a live container's resource limits, from a
//! JSON file (`-r FILE`, `-` for stdin) or from runc's flags.

use anyhow::{bail, Context};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

/// runc's flags, spelled as runc spells them. A limit flag takes `-1`
/// (none) as its own argument, `--memory -1`, as runc's do.
#[derive(clap::Args)]
pub struct Args {
    /// JSON file with linux.resources ("-" reads stdin)
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit in bytes (k, m, g suffixes; -1 for none)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_bytes)]
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (-1 for unlimited swap)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_bytes)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit in bytes
    #[arg(long, allow_negative_numbers = true, value_parser = parse_bytes)]
    pub memory_reservation: Option<i64>,
    /// Kernel memory limit in bytes (v1)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_bytes)]
    pub kernel_memory: Option<i64>,
    /// Kernel TCP buffer limit in bytes (v1)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_bytes)]
    pub kernel_memory_tcp: Option<i64>,
    /// CPU shares (runc's spelling; --cpu-shares is accepted too)
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPU time per period in microseconds (-1 for none)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS burst in microseconds
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    /// Real-time runtime per period in microseconds (v1)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Real-time period in microseconds (v1)
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// SCHED_IDLE for the cgroup: 1 or 0
    #[arg(long)]
    pub cpu_idle: Option<i64>,
    /// CPUs to run on (e.g. 0-2,4)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to allocate on
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1 for none; 0 leaves it as it is)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Intel RDT L3 cache schema (refused: berth has no Intel RDT support)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (refused, as above)
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    // As runc answers on a host without resctrl, rather than ignoring them.
    if a.l3_cache_schema.is_some() {
        bail!("update --l3-cache-schema: Intel RDT/CAT is not supported by berth");
    }
    if a.mem_bw_schema.is_some() {
        bail!("update --mem-bw-schema: Intel RDT/MBA is not supported by berth");
    }
    let resources: LinuxResources = match &a.resources {
        Some(src) => serde_json::from_slice(&read_source(src)?)
            .context("--resources: not linux.resources JSON")?,
        None => serde_json::from_value(from_flags(&a))?,
    };
    berth::control::update(root, &a.id, &resources)?;
    Ok(0)
}

/// A byte count as runc's flags take it: `1048576`, `512k`, `100m`,
/// `1.5g` (binary units, an optional `b`), or `-1` for no limit.
fn parse_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, shift) = match digits.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let shift = 10 * (1 + "kmgtp".find(c).expect("one of kmgtp")) as i32;
            (&digits[..digits.len() - 1], shift)
        }
        _ => (digits, 0),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let bytes = n * 2f64.powi(shift);
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(format!("invalid size {s:?}"));
    }
    Ok(bytes as i64)
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
    fn sizes_take_runcs_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1_048_576));
        assert_eq!(parse_bytes("512k"), Ok(524_288));
        assert_eq!(parse_bytes("100M"), Ok(104_857_600));
        assert_eq!(parse_bytes("1.5g"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("2gb"), Ok(2_147_483_648));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("-5").is_err());
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

    #[test]
    fn minus_1_is_a_value_and_both_share_spellings_work() {
        let t = T::parse_from([
            "x",
            "--memory",
            "-1",
            "--memory-swap",
            "-1",
            "--cpu-quota",
            "-1",
            "--pids-limit",
            "-1",
            "--cpu-share",
            "512",
            "c1",
        ]);
        assert_eq!(
            from_flags(&t.a),
            json!({"memory": {"limit": -1, "swap": -1},
                   "cpu": {"shares": 512, "quota": -1}, "pids": {"limit": -1}})
        );
        let t = T::parse_from(["x", "--cpu-shares", "256", "c1"]);
        assert_eq!(from_flags(&t.a), json!({"cpu": {"shares": 256}}));
    }
}
