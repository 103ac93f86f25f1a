//! One process of a container, init or exec: its pid, stdio, lifecycle,
//! and the exit waiters block on. The lifecycle refuses the steps its
//! state does not allow, in the words of containerd's runc shim. The exit
//! is known to the shim when the reaper sees it, but is *reported* (Wait,
//! State, the exit event) only once the start event is out; the container
//! holds init's back until its execs' are out too.

use crate::io::{Held, StdioPaths};
use crate::reaper::Exit;
use crate::tty::Console;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::types::task::Status;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot {step} {what} in {state} state")]
    Refused {
        /// "task" (init) or "exec".
        what: &'static str,
        step: Step,
        state: Lifecycle,
    },
    #[error("no terminal")]
    NoTerminal,
    #[error(transparent)]
    Resize(nix::Error),
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    #[default]
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// What moves a process from one state to another.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    Start,
    Pause,
    Resume,
    Exit,
    Delete,
}

impl Lifecycle {
    /// The state `step` leads to, if this state allows it.
    pub fn after(self, step: Step) -> Option<Lifecycle> {
        use Lifecycle::*;
        match (self, step) {
            (Created, Step::Start) | (Paused, Step::Resume) => Some(Running),
            (Running, Step::Pause) => Some(Paused),
            (Created | Running | Paused, Step::Exit) => Some(Stopped),
            // A created process that is deleted never runs.
            (Created | Stopped, Step::Delete) => Some(Deleted),
            _ => None,
        }
    }

    pub fn to_proto(self) -> Status {
        match self {
            Lifecycle::Created => Status::CREATED,
            Lifecycle::Running => Status::RUNNING,
            Lifecycle::Paused => Status::PAUSED,
            Lifecycle::Stopped | Lifecycle::Deleted => Status::STOPPED,
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        lower_case(self, f)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        lower_case(self, f)
    }
}

/// A variant's name as the messages say it.
fn lower_case(v: &impl fmt::Debug, f: &mut fmt::Formatter) -> fmt::Result {
    f.write_str(&format!("{v:?}").to_lowercase())
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
    status: Lifecycle,
    /// Seen by the reaper.
    exited: Option<Exit>,
    /// Told to containerd; what Wait returns.
    reported: Option<Exit>,
    /// A Start is running: the exit waits for the start event.
    start_pending: bool,
    pub held: Held,
    pub console: Option<Console>,
    /// The JSON runtime-spec process of an exec, until it starts.
    pub spec: Vec<u8>,
}

impl State {
    pub fn status(&self) -> Lifecycle {
        self.status
    }

    pub fn reported(&self) -> Option<Exit> {
        self.reported
    }
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

    fn refused(&self, step: Step, state: Lifecycle) -> ProcessError {
        let what = if self.exec_id.is_empty() {
            "task"
        } else {
            "exec"
        };
        ProcessError::Refused { what, step, state }
    }

    /// Refuses `step` if the state does not allow it now: checked before
    /// the runtime is asked, and again by [`Process::advance`] after.
    pub fn check(&self, step: Step) -> Result<(), ProcessError> {
        let status = self.lock().status;
        match status.after(step) {
            Some(_) => Ok(()),
            None => Err(self.refused(step, status)),
        }
    }

    /// Takes `step` and calls `announce` (which publishes its event) with
    /// nothing able to come between: an exit reported before makes the
    /// step impossible, and one reported after has its event after.
    pub fn advance(&self, step: Step, announce: impl FnOnce()) -> Result<(), ProcessError> {
        let mut state = self.lock();
        let next = state.status.after(step);
        state.status = next.ok_or_else(|| self.refused(step, state.status))?;
        announce();
        Ok(())
    }

    /// A Start begins: the exit, if the process has one before the start
    /// is out, waits for [`Process::end_start`].
    pub fn begin_start(&self) -> Result<(), ProcessError> {
        self.check(Step::Start)?;
        self.lock().start_pending = true;
        Ok(())
    }

    pub fn end_start(&self) {
        self.lock().start_pending = false;
    }

    /// The reaper saw the exit; the terminal (if any) is returned, to be
    /// drained before the exit is reported.
    pub fn exited(&self, exit: Exit) -> Option<Console> {
        let mut state = self.lock();
        state.exited = Some(exit);
        state.console.take()
    }

    pub fn has_exited(&self) -> bool {
        self.lock().exited.is_some()
    }

    /// Reports the exit if the reaper saw it and no Start is in progress:
    /// `announce` publishes it, then Wait returns it and the process is
    /// stopped. Returns the exit it reported.
    pub fn report_if_due(&self, announce: impl FnOnce(u32, &Exit)) -> Option<Exit> {
        let mut state = self.lock();
        let exit = state
            .exited
            .filter(|_| state.reported.is_none() && !state.start_pending)?;
        announce(state.pid, &exit);
        state.reported = Some(exit);
        if let Some(next) = state.status.after(Step::Exit) {
            state.status = next;
        }
        state.held.close_stdin();
        self.reported.notify_all();
        Some(exit)
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

    /// Deletes a process that has exited or never started (while no Start
    /// runs); returns its exit, status 0 for one that never ran.
    pub fn delete(&self) -> Result<Exit, ProcessError> {
        let mut state = self.lock();
        let next = state.status.after(Step::Delete);
        let next = next.filter(|_| !state.start_pending);
        state.status = next.ok_or_else(|| self.refused(Step::Delete, state.status))?;
        Ok(state.reported.unwrap_or(Exit::now(0)))
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
        matches!(self.lock().status, Lifecycle::Running | Lifecycle::Paused)
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

#[cfg(test)]
mod tests {
    use super::*;
    use Lifecycle::*;

    fn exec() -> Process {
        Process::new("e1", StdioPaths::default())
    }

    fn init() -> Process {
        Process::new("", StdioPaths::default())
    }

    /// Starts `p` as the container does after the runtime said yes.
    fn started(p: Process) -> Process {
        p.begin_start().unwrap();
        p.advance(Step::Start, || {}).unwrap();
        p.end_start();
        p
    }

    fn status(p: &Process) -> Lifecycle {
        p.lock().status()
    }

    #[test]
    fn each_state_allows_only_its_steps() {
        let steps = [
            Step::Start,
            Step::Pause,
            Step::Resume,
            Step::Exit,
            Step::Delete,
        ];
        let table = [
            (
                Created,
                [Some(Running), None, None, Some(Stopped), Some(Deleted)],
            ),
            (Running, [None, Some(Paused), None, Some(Stopped), None]),
            (Paused, [None, None, Some(Running), Some(Stopped), None]),
            (Stopped, [None, None, None, None, Some(Deleted)]),
            (Deleted, [None; 5]),
        ];
        for (state, afters) in table {
            for (step, after) in steps.iter().zip(afters) {
                assert_eq!(state.after(*step), after, "{step} in {state} state");
            }
        }
    }

    #[test]
    fn refusals_name_the_step_and_the_state() {
        let err = init().check(Step::Pause).unwrap_err();
        assert_eq!(err.to_string(), "cannot pause task in created state");
        let p = started(exec());
        let err = p.delete().unwrap_err();
        assert_eq!(err.to_string(), "cannot delete exec in running state");
        let err = p.advance(Step::Resume, || {}).unwrap_err();
        assert_eq!(err.to_string(), "cannot resume exec in running state");
        assert_eq!(status(&p), Running, "a refused step changes nothing");
    }

    /// The runtime paused (or resumed) the container, but init's exit was
    /// reported before the shim took the step: the task stays stopped.
    #[test]
    fn a_pause_or_resume_that_ends_after_the_exit_leaves_the_task_stopped() {
        let p = started(init());
        p.check(Step::Pause).unwrap();
        p.exited(Exit::now(137));
        assert!(p.report_if_due(|_, _| {}).is_some());
        let mut announced = false;
        let err = p.advance(Step::Pause, || announced = true).unwrap_err();
        assert_eq!(err.to_string(), "cannot pause task in stopped state");
        assert!(!announced, "no paused event for a stopped task");
        assert_eq!(p.lock().status().to_proto(), Status::STOPPED);

        let p = started(init());
        p.advance(Step::Pause, || {}).unwrap();
        p.check(Step::Resume).unwrap();
        p.exited(Exit::now(137));
        p.report_if_due(|_, _| {});
        assert!(p.advance(Step::Resume, || {}).is_err());
        assert_eq!(p.lock().status().to_proto(), Status::STOPPED);
    }

    #[test]
    fn an_exit_during_start_is_reported_only_after_it() {
        let p = init();
        p.begin_start().unwrap();
        p.lock().pid = 42;
        p.exited(Exit::now(3));
        assert!(p.report_if_due(|_, _| {}).is_none(), "held by the start");
        assert_eq!(status(&p), Created);
        p.advance(Step::Start, || {}).unwrap();
        p.end_start();
        let mut told = None;
        let reported = p.report_if_due(|pid, e| told = Some((pid, e.status)));
        assert_eq!(reported.map(|e| e.status), Some(3));
        assert_eq!(told, Some((42, 3)));
        assert_eq!((status(&p), p.wait().status), (Stopped, 3));
        assert!(p.report_if_due(|_, _| panic!("reported twice")).is_none());
    }

    #[test]
    fn a_started_process_cannot_start_again() {
        let p = started(init());
        let err = p.begin_start().unwrap_err();
        assert_eq!(err.to_string(), "cannot start task in running state");
        p.exited(Exit::now(0));
        p.report_if_due(|_, _| {});
        assert!(p.begin_start().is_err(), "nor once it has stopped");
    }

    #[test]
    fn delete_takes_an_exited_or_never_started_process_once() {
        let p = started(exec());
        p.exited(Exit::now(5));
        p.report_if_due(|_, _| {});
        assert_eq!(p.delete().unwrap().status, 5);
        assert_eq!(status(&p), Deleted);
        let err = p.delete().unwrap_err();
        assert_eq!(err.to_string(), "cannot delete exec in deleted state");

        let never = exec();
        assert_eq!(never.delete().unwrap().status, 0);

        let starting = exec();
        starting.begin_start().unwrap();
        assert!(starting.delete().is_err(), "not while it starts");
    }
}
