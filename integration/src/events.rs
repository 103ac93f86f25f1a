//! `ctr events` of a scenario's containerd, read in the background.

use crate::exec::DEADLINE;
use crate::{lines_of, Containerd};
use std::process::Stdio;
use std::sync::mpsc::Receiver;

/// `ctr events`, read in the background.
pub struct Events {
    child: std::process::Child,
    lines: Receiver<String>,
}

impl Events {
    pub fn watch(ctd: &Containerd) -> Events {
        let mut child = ctd
            .ctr_command(&["events"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        // ctr subscribes before it prints anything: give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Events { child, lines }
    }

    /// The `/tasks/...` topics of `id`'s events, until `last` arrives.
    pub fn task_topics(&self, id: &str, last: &str) -> Vec<String> {
        let events = self.task_events(id, last);
        events.into_iter().map(|(topic, _)| topic).collect()
    }

    /// `id`'s `/tasks/...` events as (topic, line), until `last` arrives.
    pub fn task_events(&self, id: &str, last: &str) -> Vec<(String, String)> {
        let mut events: Vec<(String, String)> = Vec::new();
        while events.last().map(|(topic, _)| topic.as_str()) != Some(last) {
            let line = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("no {last} event ({e}); got {events:?}"));
            let ours = line.contains(&format!("\"container_id\":\"{id}\""));
            let topic = line.split_whitespace().find(|w| w.starts_with("/tasks/"));
            if let (true, Some(topic)) = (ours, topic) {
                events.push((topic.to_owned(), line.clone()));
            }
        }
        events
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
