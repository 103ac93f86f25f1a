//! Signal names as `kill` accepts them: `KILL`, `SIGKILL`, `kill` or `9`,
//! and `0`, the liveness probe that delivers nothing.

use nix::sys::signal::Signal;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal {0:?}: not a signal name or number")]
    Unknown(String),
}

/// The signal `s` names; `None` for `0`, which kill(2) only checks the
/// target exists for.
pub fn parse(s: &str) -> Result<Option<Signal>, SignalError> {
    let unknown = || SignalError::Unknown(s.to_string());
    match s.parse::<i32>() {
        Ok(0) => return Ok(None),
        Ok(n) => return Signal::try_from(n).map(Some).map_err(|_| unknown()),
        Err(_) => {}
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map(Some).map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_numbers() {
        for s in ["KILL", "SIGKILL", "kill", "9"] {
            assert_eq!(parse(s).unwrap(), Some(Signal::SIGKILL), "{s}");
        }
        assert_eq!(parse("TERM").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(parse("SIGUSR1").unwrap(), Some(Signal::SIGUSR1));
    }

    #[test]
    fn zero_is_the_probe() {
        assert_eq!(parse("0").unwrap(), None);
    }

    #[test]
    fn rejects_unknown() {
        for s in ["", "SIGNOPE", "65", "-1"] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains("invalid signal"), "{s}: {e}");
        }
    }
}
