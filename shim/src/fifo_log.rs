//! The serving shim's log: records on the bundle's `log` fifo, which
//! containerd copies into its own log byte for byte. Each record is one
//! line in containerd's text format (`time="..." level=warn msg="..."`,
//! the message quoted so that a newline in it stays inside), ends with
//! exactly one newline, and goes out in a single write of at most
//! PIPE_BUF bytes, which a fifo never splits. A longer record can be cut
//! when containerd restarts between two writes of it; the next containerd
//! then reads half a line and glues its own next line onto it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

/// What a fifo writes in one piece (Linux's PIPE_BUF).
const PIPE_BUF: usize = 4096;
/// The fifo containerd makes in the bundle, the shim's working directory.
const FIFO: &str = "log";

struct FifoLog {
    fifo: Mutex<File>,
}

impl log::Log for FifoLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = record(
            &berth::clock::now_rfc3339(),
            r.level(),
            &r.args().to_string(),
        );
        // One write: the record goes whole or, while no containerd reads
        // (EPIPE), not at all.
        let _ = self.fifo.lock().unwrap().write(&line);
    }

    fn flush(&self) {}
}

/// Sends the `log` crate's records to the bundle's fifo: info and up, and
/// debug with `debug`.
pub fn init(debug: bool) -> std::io::Result<()> {
    let fifo = OpenOptions::new().write(true).open(FIFO)?;
    let logger = FifoLog {
        fifo: Mutex::new(fifo),
    };
    log::set_boxed_logger(Box::new(logger)).map_err(std::io::Error::other)?;
    log::set_max_level(match debug {
        true => log::LevelFilter::Debug,
        false => log::LevelFilter::Info,
    });
    Ok(())
}

/// One record: a line of at most PIPE_BUF bytes, the message cut short to
/// fit.
fn record(time: &str, level: log::Level, msg: &str) -> Vec<u8> {
    let head = format!(
        "time=\"{time}\" level={} msg=",
        level.as_str().to_lowercase()
    );
    let budget = PIPE_BUF - head.len() - "\n".len();
    format!("{head}{}\n", quoted(msg, budget)).into_bytes()
}

/// `msg` as a JSON string (which logrus's text format reads too) of at
/// most `budget` bytes: the longest start of it that fits.
fn quoted(msg: &str, budget: usize) -> String {
    let whole = serde_json::to_string(msg).expect("a string serializes");
    if whole.len() <= budget {
        return whole;
    }
    // JSON escapes character by character.
    let mut cut = String::from("\"");
    for c in msg.chars() {
        let one = serde_json::to_string(c.encode_utf8(&mut [0; 4])).expect("a string serializes");
        let inner = &one[1..one.len() - 1];
        if cut.len() + inner.len() + 1 > budget {
            break;
        }
        cut.push_str(inner);
    }
    cut.push('"');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    const TIME: &str = "2026-01-02T03:04:05.000000000Z";

    fn line(msg: &str) -> String {
        String::from_utf8(record(TIME, Level::Warn, msg)).unwrap()
    }

    #[test]
    fn a_record_is_one_line_with_one_newline() {
        let got = line("forward /tasks/exec-added: Broken pipe (os error 32)");
        assert_eq!(
            got,
            format!(
                "time=\"{TIME}\" level=warn msg=\"forward /tasks/exec-added: Broken pipe (os error 32)\"\n"
            )
        );
        for msg in [
            "ends with a newline\n",
            "two\nlines",
            "",
            "\n\n",
            "quote \" in it",
        ] {
            let got = line(msg);
            assert!(got.ends_with('\n') && !got.ends_with("\n\n"), "{got:?}");
            assert_eq!(got.matches('\n').count(), 1, "{got:?}");
        }
    }

    #[test]
    fn a_long_record_is_cut_to_what_a_fifo_writes_whole() {
        for msg in [
            "x".repeat(10_000),
            "é\n".repeat(3_000),
            "\u{1}".repeat(5_000),
        ] {
            let got = line(&msg);
            assert!(got.len() <= PIPE_BUF, "{}", got.len());
            assert!(got.len() > PIPE_BUF - 8, "{}", got.len());
            assert!(got.ends_with("\"\n"), "{got:?}");
            assert_eq!(got.matches('\n').count(), 1);
        }
    }

    /// Records written through the logger come out of a fifo whole, one
    /// line each, with a reader on the other end.
    #[test]
    fn records_reach_the_fifo_as_lines() {
        let dir = std::env::temp_dir().join(format!("berth-fifo-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FIFO);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = std::thread::spawn({
            let path = path.clone();
            move || std::fs::read_to_string(path).unwrap()
        });
        let logger = FifoLog {
            fifo: Mutex::new(OpenOptions::new().write(true).open(&path).unwrap()),
        };
        log::set_max_level(log::LevelFilter::Info);
        for msg in ["first", "second\n"] {
            let args = format_args!("{msg}");
            let r = log::Record::builder().level(Level::Warn).args(args).build();
            log::Log::log(&logger, &r);
        }
        drop(logger);
        let text = reader.join().unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(lines[0].ends_with("msg=\"first\"\n"), "{text:?}");
        assert!(lines[1].ends_with("msg=\"second\\n\"\n"), "{text:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
