//! One process of a container, init or exec: its pid, status, stdio, and
//! the exit waiters block on. The exit is known to the shim when the reaper
//! sees it, but is *reported* (Wait, State, the exit event) only once the
//! start event is out and, for init, once its execs have exited: that is
//! the order containerd expects.

use crate::io::{Held, StdioPaths};
use crate::reaper::Exit;
use crate::tty::Console;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::types::task::Status;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no terminal")]
    NoTerminal,
    #[error(transparent)]
    Resize(nix::Error),
}

pub struct Process {
    pub exec_id: String,
    pub stdio: StdioPaths,
    state: Mutex<State>,
    reported: Condvar,
}

#[derive(Default)]
pub struct State {
    pub pid: u32,
    pub status: Lifecycle,
    /// Seen by the reaper.
    pub exited: Option<Exit>,
    /// Told to containerd; what Wait returns.
    pub reported: Option<Exit>,
    /// A Start is running: the exit waits for the start event.
    pub start_pending: bool,
    pub held: Held,
    pub console: Option<Console>,
    /// The JSON runtime-spec process of an exec, until it starts.
    pub spec: Vec<u8>,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    #[default]
    Created,
    Running,
    Paused,
    Stopped,
}

impl Process {
    pub fn new(exec_id: &str, stdio: StdioPaths) -> Process {
        Process {
            exec_id: exec_id.to_owned(),
            stdio,
            state: Mutex::new(State::default()),
            reported: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.lock().pid
    }

    /// Records the exit as reported and wakes Wait.
    pub fn report(&self, state: &mut State, exit: Exit) {
        state.reported = Some(exit);
        state.status = Lifecycle::Stopped;
        state.held.close_stdin();
        self.reported.notify_all();
    }

    /// Blocks until the exit has been reported.
    pub fn wait(&self) -> Exit {
        let mut state = self.lock();
        loop {
            if let Some(exit) = state.reported {
                return exit;
            }
            state = self.reported.wait(state).unwrap();
        }
    }

    /// ResizePty.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), ProcessError> {
        let state = self.lock();
        let console = state.console.as_ref().ok_or(ProcessError::NoTerminal)?;
        console.resize(width, height).map_err(ProcessError::Resize)
    }

    /// CloseIO: the process reads end-of-file.
    pub fn close_stdin(&self) {
        self.lock().held.close_stdin();
    }

    pub fn is_running(&self) -> bool {
        let state = self.lock();
        state.reported.is_none() && matches!(state.status, Lifecycle::Running | Lifecycle::Paused)
    }
}

impl Lifecycle {
    pub fn to_proto(self) -> Status {
        match self {
            Lifecycle::Created => Status::CREATED,
            Lifecycle::Running => Status::RUNNING,
            Lifecycle::Paused => Status::PAUSED,
            Lifecycle::Stopped => Status::STOPPED,
        }
    }
}

/// An exit time as protobuf's Timestamp.
pub fn timestamp(exit: &Exit) -> Timestamp {
    let since = exit.since_epoch();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
        ..Default::default()
    }
}
