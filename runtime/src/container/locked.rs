//! One way in for every verb that changes a container: lock its state
//! directory, load its state, work out its real status and check it
//! against the verb's row of the status table, all in one call.

use super::{status, ContainerError};
use crate::state::{State, StateDir, Status};
use crate::Result;
use std::path::Path;

/// The verbs that act on a container under its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Start,
    /// A signal to init.
    Kill,
    /// `kill --all`, or SIGKILL: reaches what init left behind too.
    KillAll,
    Delete,
    ForceDelete,
    Pause,
    Resume,
    Update,
    Exec,
    /// `exec --ignore-paused`.
    ExecPaused,
    Checkpoint,
}

impl Verb {
    /// The statuses the verb acts on (the status table, one row a verb).
    fn allows(self) -> &'static [Status] {
        use Status::*;
        match self {
            Verb::Start => &[Created],
            Verb::Kill => &[Created, Running, Paused],
            Verb::KillAll => &[Created, Running, Paused, Stopped],
            Verb::Delete => &[Created, Stopped],
            Verb::ForceDelete => &[Creating, Created, Running, Paused, Stopped],
            Verb::Pause => &[Created, Running],
            Verb::Resume => &[Paused],
            Verb::Update => &[Creating, Created, Running, Paused],
            Verb::Exec => &[Created, Running],
            Verb::ExecPaused => &[Created, Running, Paused],
            Verb::Checkpoint => &[Running, Paused],
        }
    }

    /// Why the verb refuses `status`, in the words runc uses where tools
    /// match on them ("container not running", "cannot exec in a stopped
    /// container").
    fn refusal(self, id: &str, status: Status) -> ContainerError {
        let wrong = |what| ContainerError::WrongStatus {
            id: id.into(),
            status,
            what,
        };
        match (self, status) {
            (Verb::Delete, _) => ContainerError::NotStopped {
                id: id.into(),
                status,
            },
            (Verb::Exec, Status::Paused) => ContainerError::Paused,
            (Verb::Exec | Verb::ExecPaused, Status::Stopped) => {
                wrong("cannot exec in a stopped container")
            }
            (Verb::Exec | Verb::ExecPaused, _) => {
                wrong("cannot exec before the container is created")
            }
            (_, Status::Stopped) => ContainerError::NotRunning,
            (Verb::Start, _) => wrong("only a created container can be started"),
            (Verb::Pause, _) => wrong("only a running container can be paused"),
            (Verb::Resume, _) => wrong("only a paused container can be resumed"),
            // kill and update, of a container still being created
            _ => ContainerError::NotRunning,
        }
    }

    fn check(self, id: &str, status: Status) -> std::result::Result<(), ContainerError> {
        match self.allows().contains(&status) {
            true => Ok(()),
            false => Err(self.refusal(id, status)),
        }
    }
}

/// A container held under its lock, with the state and status it had
/// when the lock was taken.
pub struct Locked {
    pub dir: StateDir,
    pub state: State,
    pub status: Status,
}

impl Locked {
    /// Opens, locks and loads container `id`, and checks that `verb` may
    /// act on it now.
    pub fn open(root: &Path, id: &str, verb: Verb) -> Result<Locked> {
        Locked::from_dir(StateDir::open(root, id)?, verb)
    }

    /// As [`Locked::open`], for a directory the caller has locked.
    pub fn from_dir(dir: StateDir, verb: Verb) -> Result<Locked> {
        let state = dir.load()?;
        let status = status(&state);
        verb.check(&dir.id, status)?;
        Ok(Locked { dir, state, status })
    }

    /// Records the state as it is now.
    pub fn save(&self) -> Result<()> {
        Ok(self.dir.save(&self.state)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Creating, Created, Running, Paused, Stopped];

    fn refused(verb: Verb, status: Status) -> Option<String> {
        verb.check("c1", status).err().map(|e| e.to_string())
    }

    #[test]
    fn each_verb_acts_on_its_statuses_only() {
        let table: [(Verb, &[Status]); 5] = [
            (Verb::Start, &[Created]),
            (Verb::Pause, &[Created, Running]),
            (Verb::Resume, &[Paused]),
            (Verb::Exec, &[Created, Running]),
            (Verb::Delete, &[Created, Stopped]),
        ];
        for (verb, ok) in table {
            for status in ALL {
                let allowed = refused(verb, status).is_none();
                assert_eq!(allowed, ok.contains(&status), "{verb:?} in {status}");
            }
        }
    }

    #[test]
    fn a_stopped_container_is_not_running_for_every_verb_but_exec_and_delete() {
        for verb in [
            Verb::Start,
            Verb::Kill,
            Verb::Pause,
            Verb::Resume,
            Verb::Update,
        ] {
            assert_eq!(
                refused(verb, Stopped).as_deref(),
                Some("container not running")
            );
        }
        let exec = refused(Verb::Exec, Stopped).unwrap();
        assert!(
            exec.ends_with("cannot exec in a stopped container"),
            "{exec}"
        );
    }

    #[test]
    fn refusals_name_the_container_and_its_status() {
        assert_eq!(
            refused(Verb::Delete, Running).unwrap(),
            "cannot delete container \"c1\" that is not stopped: running"
        );
        assert_eq!(
            refused(Verb::Start, Running).unwrap(),
            "container \"c1\" is running: only a created container can be started"
        );
        assert_eq!(
            refused(Verb::Exec, Paused).unwrap(),
            "cannot exec in a paused container (use --ignore-paused)"
        );
        assert!(refused(Verb::ExecPaused, Paused).is_none());
        assert!(refused(Verb::ForceDelete, Running).is_none());
        assert!(refused(Verb::KillAll, Stopped).is_none());
    }
}
