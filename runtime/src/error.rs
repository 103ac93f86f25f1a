//! The one context helper of the library: an OS call that failed, named by
//! what berth was doing ("set hostname: EPERM: Operation not permitted").
//! Each module's error enum wraps it where its calls reach the system.

/// What the system refused, and what berth was doing at the time.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct OsError {
    what: String,
    #[source]
    cause: OsCause,
}

/// The refusal in the form the call gave it: nix's reads "EPERM: ...",
/// std's "... (os error 1)"; each is kept as people saw it before.
#[derive(Debug, thiserror::Error)]
pub enum OsCause {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Nix(#[from] nix::Error),
}

impl OsError {
    pub fn new(what: impl Into<String>, cause: impl Into<OsCause>) -> OsError {
        OsError {
            what: what.into(),
            cause: cause.into(),
        }
    }
}

pub trait Context<T> {
    /// Names what the failed call was for.
    fn context(self, what: impl Into<String>) -> Result<T, OsError>;
}

impl<T, E: Into<OsCause>> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, OsError> {
        self.map_err(|e| OsError::new(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_failed_in_the_calls_own_words() {
        let nix: nix::Result<()> = Err(nix::errno::Errno::EPERM);
        let e = nix.context("set hostname").unwrap_err();
        assert_eq!(
            e.to_string(),
            "set hostname: EPERM: Operation not permitted"
        );
        let io: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        let e = io.context("open /x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("open /x: No such file or directory"),
            "{e}"
        );
    }
}
