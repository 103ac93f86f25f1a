//! `berth events`: resource usage (`--stats` once, else every
//! `--interval`) and OOM notifications, one JSON record per line, until
//! the container stops.

use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Print one stats record and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats records (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Container id
    pub id: String,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = n.parse().map_err(|_| format!("bad interval {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad interval {s:?}: use ms, s or m")),
    }
    .and_then(|d| {
        if d.is_zero() {
            Err("interval must be positive".into())
        } else {
            Ok(d)
        }
    })
}

/// How often OOM kills are looked for between stats records.
const OOM_POLL: Duration = Duration::from_millis(100);

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    if a.stats {
        println!("{}", berth::control::stats(root, &a.id)?);
        return Ok(0);
    }
    let mut ooms = berth::control::oom_kills(root, &a.id).context("events")?;
    let watch = berth::control::oom_watch(root, &a.id).context("events")?;
    let mut next_stats = Instant::now();
    loop {
        // Looked up first, so an OOM kill that ends the container is
        // still reported below.
        let alive = berth::control::alive(root, &a.id);
        let now_ooms = berth::control::oom_kills(root, &a.id).unwrap_or(ooms);
        if now_ooms > ooms {
            println!("{}", berth::control::Event::new("oom", &a.id, None));
            ooms = now_ooms;
        }
        if Instant::now() >= next_stats {
            if let Ok(s) = berth::control::stats(root, &a.id) {
                println!("{s}");
            }
            next_stats += a.interval;
        }
        if !alive {
            return Ok(0);
        }
        let limit = OOM_POLL.min(next_stats.saturating_duration_since(Instant::now()));
        // Without a watch, or when it fails, OOM kills are found by polling.
        if watch.as_ref().is_none_or(|w| w.wait(Some(limit)).is_err()) {
            std::thread::sleep(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("7").unwrap(), Duration::from_secs(7));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5h").is_err());
    }
}
