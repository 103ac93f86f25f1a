//! Verbs that act on a live container through its cgroup: pause, resume,
//! update, ps and events.

use crate::cgroups::oom::OomWatch;
use crate::cgroups::Cgroup;
use crate::container::{self, ContainerError, Locked, Status, Verb};
use crate::state::{Phase, State};
use crate::Result;
use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// The container's cgroup, where it has one: a rootless container has
/// none in a hierarchy that was not delegated (container::create).
fn cgroup_of(s: &State) -> Result<Cgroup> {
    let exists = |cg: &Cgroup| cg.dirs().iter().any(|d| d.is_dir());
    let cgroup = s.cgroup.clone().map(Cgroup::new).filter(exists);
    Ok(cgroup.ok_or_else(|| ContainerError::NoCgroup(s.id.clone()))?)
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let mut c = Locked::open(root, id, Verb::Pause)?;
    cgroup_of(&c.state)?.freeze(true)?;
    c.state.phase = Phase::Paused;
    c.save()
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let mut c = Locked::open(root, id, Verb::Resume)?;
    cgroup_of(&c.state)?.freeze(false)?;
    c.state.phase = Phase::Running;
    c.save()
}

/// Writes new resource limits into a live container's cgroup.
pub fn update(root: &Path, id: &str, r: &LinuxResources) -> Result<()> {
    let c = Locked::open(root, id, Verb::Update)?;
    let cg = cgroup_of(&c.state)?;
    let ws = cg.plan(Some(r))?;
    Ok(cg.update(&ws)?)
}

/// Pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let s = container::load(root, id)?;
    if container::status(&s) == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(cgroup_of(&s)?.pids())
}

/// One `events` record of type "stats" for the container.
pub fn stats(root: &Path, id: &str) -> Result<Event> {
    let s = container::load(root, id)?;
    if container::status(&s) == Status::Stopped {
        return Err(ContainerError::NotRunning.into());
    }
    Ok(Event::new("stats", id, Some(cgroup_of(&s)?.stats())))
}

/// One record of `events`, serialized with runc's key order (`type`, `id`,
/// `data`) and without `data` when there is none (`oom`): people grep
/// these lines.
#[derive(Debug, serde::Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

impl Event {
    pub fn new(kind: &'static str, id: &str, data: Option<serde_json::Value>) -> Event {
        let id = id.to_owned();
        Event { kind, id, data }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&line)
    }
}

/// How many times the kernel OOM-killed a process of the container so far.
pub fn oom_kills(root: &Path, id: &str) -> Result<u64> {
    let s = container::load(root, id)?;
    Ok(cgroup_of(&s)?.oom_kills())
}

/// A watch that wakes `events` when the container's OOM counter changes;
/// None where the cgroup cannot be watched (`events` polls then).
pub fn oom_watch(root: &Path, id: &str) -> Result<Option<OomWatch>> {
    let s = container::load(root, id)?;
    Ok(OomWatch::of_cgroup(&cgroup_of(&s)?).ok().flatten())
}

/// Whether the container's init still lives (events stops when it is gone).
pub fn alive(root: &Path, id: &str) -> bool {
    container::load(root, id).is_ok_and(|s| container::status(&s) != Status::Stopped)
}
