//! `berth ps`: the processes of a container, as `ps` shows them or as a
//! JSON list of pids.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id
    pub id: String,
    /// Arguments for ps (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<i32> {
    let pids = berth::control::pids(root, &a.id)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(0)
}

/// The header and the lines whose PID column is one of `pids`.
fn filter(table: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps output has no PID column")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_pids() {
        let t = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 420 1 other\n";
        assert_eq!(
            filter(t, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sh\n"
        );
        assert!(filter("USER X\n", &[1]).is_err());
    }
}
