//! Signal names as `kill` accepts them: `KILL`, `SIGKILL`, `kill` or `9`.

use nix::sys::signal::Signal;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal {0:?}: not a signal name or number")]
    Unknown(String),
}

pub fn parse(s: &str) -> Result<Signal, SignalError> {
    let unknown = || SignalError::Unknown(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| unknown());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_numbers() {
        for s in ["KILL", "SIGKILL", "kill", "9"] {
            assert_eq!(parse(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("SIGUSR1").unwrap(), Signal::SIGUSR1);
    }

    #[test]
    fn rejects_unknown() {
        for s in ["", "SIGNOPE", "0", "65", "-1"] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains("invalid signal"), "{s}: {e}");
        }
    }
}
