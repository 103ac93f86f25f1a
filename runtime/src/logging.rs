//! runc-compatible logging: `--log FILE --log-format text|json`.
//!
//! containerd's runc shim and conmon read the log file after a failure and
//! show the user the last `"level":"error"` message, so each line is one
//! self-contained record with `level`, `msg` and `time`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
    min: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set in the processes on the container's side: their records go to berth,
/// which logs them as its own, as runc's init hands its records to runc.
/// Their stderr may be the container's terminal by then.
static FORWARD: OnceLock<Box<Sink>> = OnceLock::new();

type Sink = dyn Fn(Level, &str) + Send + Sync;

/// Sends this process's records to `sink` from now on.
pub fn forward(sink: impl Fn(Level, &str) + Send + Sync + 'static) {
    let _ = FORWARD.set(Box::new(sink));
}

/// Sets up the process-wide logger; without a file, records go to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => None,
    };
    let min = if debug { Level::Debug } else { Level::Warn };
    let _ = LOGGER.set(Logger { file, format, min });
    Ok(())
}

/// True when records go to a file, so errors must also reach stderr.
pub fn logs_to_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        if level >= Level::Warn {
            eprintln!("{msg}");
        }
        return;
    };
    if level < logger.min {
        return;
    }
    if let Some(sink) = FORWARD.get() {
        return sink(level, msg);
    }
    let line = render(logger.format, level, msg, &crate::clock::now_rfc3339());
    match &logger.file {
        Some(f) => {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

fn render(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let rec = serde_json::json!({"level": level.name(), "msg": msg, "time": time});
            format!("{rec}\n")
        }
        Format::Text => format!(
            "time={time:?} level={} msg={}\n",
            level.name(),
            serde_json::Value::from(msg)
        ),
    }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_record_has_level_msg_time() {
        let line = render(Format::Json, Level::Error, "no \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "no \"x\"");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_record_quotes_message() {
        let line = render(Format::Text, Level::Warn, "a b", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
