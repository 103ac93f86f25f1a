//! `berth list`: the containers under `--root`, as a table or JSON.

use berth::container::StateView;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the container ids
    #[arg(short, long)]
    pub quiet: bool,
}

/// With no container yet, the default root may not exist; a root the
/// caller named must (runc 1.2 and later fail too): a typo lists nothing.
pub fn run(root: &Path, named: bool, a: Args) -> anyhow::Result<i32> {
    if named && !root.is_dir() {
        anyhow::bail!("list: --root {}: no such directory", root.display());
    }
    let all = berth::container::list(root)?;
    if a.quiet {
        all.iter().for_each(|c| println!("{}", c.id));
    } else if a.format == "json" {
        println!("{}", serde_json::to_string(&all)?);
    } else {
        print!("{}", table(&all));
    }
    Ok(0)
}

fn table(all: &[StateView]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for c in all {
        rows.push([
            c.id.clone(),
            c.pid.to_string(),
            c.status.to_string(),
            c.bundle.display().to_string(),
            c.created.clone(),
            "root".to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("{}\n", cells.join("   ").trim_end())
        })
        .collect()
}
