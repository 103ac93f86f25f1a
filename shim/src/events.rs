//! Events to containerd (`Events/Forward` on TTRPC_ADDRESS), sent in order
//! by one thread so that no request or exit waits on containerd. The
//! connection is made when the first event goes out and made again if
//! containerd restarted.

use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::topics;
use containerd_shim::protos::{Client, EventsClient};
use containerd_shim::util::{connect, timestamp};
use containerd_shim::Context;
use protobuf::well_known_types::any::Any;
use protobuf::MessageDyn;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// Tries per event; containerd restarts in about a second.
const ATTEMPTS: u32 = 20;
const RETRY_AFTER: Duration = Duration::from_millis(250);

pub type Event = (&'static str, Any);

pub struct Events {
    tx: Mutex<Option<Sender<Event>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Events {
    pub fn start(address: String, namespace: String) -> Events {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || forward_all(&address, &namespace, rx));
        Events {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Events that go to the receiver instead of containerd.
    #[cfg(test)]
    pub fn capture() -> (Events, Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let events = Events {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
        };
        (events, rx)
    }

    /// Queues `event` under `topic` (one of `containerd_shim::protos::topics`).
    pub fn publish(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        match packed(topic, &*event) {
            Ok(any) => {
                if let Some(tx) = &*self.tx.lock().unwrap() {
                    let _ = tx.send((topic, any));
                }
            }
            Err(e) => log::error!("encode {topic} event: {e}"),
        }
    }

    /// Sends what is queued, then stops (when the shim exits).
    pub fn flush(&self) {
        self.tx.lock().unwrap().take();
        if let Some(thread) = self.thread.lock().unwrap().take() {
            let _ = thread.join();
        }
    }
}

/// containerd's name of the event each topic carries. Asking the message
/// (`descriptor_dyn()`, which protobuf's `write_to_bytes_dyn` also does)
/// would build protobuf's reflection of the events file and all it
/// imports, descriptor.proto among them: heap in every shim, for a name
/// that never changes.
fn event_type(topic: &str) -> Option<&'static str> {
    Some(match topic {
        topics::TASK_CREATE_EVENT_TOPIC => "containerd.events.TaskCreate",
        topics::TASK_START_EVENT_TOPIC => "containerd.events.TaskStart",
        topics::TASK_OOM_EVENT_TOPIC => "containerd.events.TaskOOM",
        topics::TASK_EXIT_EVENT_TOPIC => "containerd.events.TaskExit",
        topics::TASK_DELETE_EVENT_TOPIC => "containerd.events.TaskDelete",
        topics::TASK_EXEC_ADDED_EVENT_TOPIC => "containerd.events.TaskExecAdded",
        topics::TASK_EXEC_STARTED_EVENT_TOPIC => "containerd.events.TaskExecStarted",
        topics::TASK_PAUSED_EVENT_TOPIC => "containerd.events.TaskPaused",
        topics::TASK_RESUMED_EVENT_TOPIC => "containerd.events.TaskResumed",
        topics::TASK_CHECKPOINTED_EVENT_TOPIC => "containerd.events.TaskCheckpointed",
        _ => return None,
    })
}

fn packed(topic: &str, event: &dyn MessageDyn) -> Result<Any, String> {
    let type_url = event_type(topic).ok_or("no event type for this topic")?;
    let mut value = Vec::with_capacity(event.compute_size_dyn() as usize);
    let mut out = protobuf::CodedOutputStream::vec(&mut value);
    event
        .write_to_with_cached_sizes_dyn(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    drop(out);
    Ok(Any {
        type_url: type_url.to_owned(),
        value,
        ..Default::default()
    })
}

fn forward_all(address: &str, namespace: &str, rx: Receiver<Event>) {
    let mut client: Option<EventsClient> = None;
    for (topic, event) in rx {
        let request = forward_request(topic, namespace, event);
        for _ in 0..ATTEMPTS {
            if client.is_none() {
                client = connect(address)
                    .ok()
                    .and_then(|fd| Client::new(fd).ok())
                    .map(EventsClient::new);
            }
            if let Some(c) = &client {
                match c.forward(Context::default(), &request) {
                    Ok(_) => break,
                    Err(e) => {
                        log::warn!("forward {topic}: {e}");
                        client = None;
                    }
                }
            }
            std::thread::sleep(RETRY_AFTER);
        }
    }
}

fn forward_request(topic: &str, namespace: &str, event: Any) -> ForwardRequest {
    let envelope = Envelope {
        timestamp: timestamp().ok().into(),
        namespace: namespace.to_owned(),
        topic: topic.to_owned(),
        event: Some(event).into(),
        ..Default::default()
    };
    ForwardRequest {
        envelope: Some(envelope).into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
        TaskResumed, TaskStart,
    };
    use protobuf::Message;

    #[test]
    fn each_topic_carries_the_type_protobuf_names_for_its_event() {
        let events: [(&str, Box<dyn MessageDyn>); 9] = [
            (topics::TASK_CREATE_EVENT_TOPIC, Box::new(TaskCreate::new())),
            (topics::TASK_START_EVENT_TOPIC, Box::new(TaskStart::new())),
            (topics::TASK_OOM_EVENT_TOPIC, Box::new(TaskOOM::new())),
            (topics::TASK_EXIT_EVENT_TOPIC, Box::new(TaskExit::new())),
            (topics::TASK_DELETE_EVENT_TOPIC, Box::new(TaskDelete::new())),
            (
                topics::TASK_EXEC_ADDED_EVENT_TOPIC,
                Box::new(TaskExecAdded::new()),
            ),
            (
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted::new()),
            ),
            (topics::TASK_PAUSED_EVENT_TOPIC, Box::new(TaskPaused::new())),
            (
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed::new()),
            ),
        ];
        for (topic, event) in events {
            let any = packed(topic, &*event).unwrap();
            assert_eq!(any.type_url, event.descriptor_dyn().full_name(), "{topic}");
        }
        let exit = TaskExit {
            container_id: "c1".into(),
            pid: 42,
            exit_status: 137,
            ..Default::default()
        };
        let any = packed(topics::TASK_EXIT_EVENT_TOPIC, &exit).unwrap();
        assert_eq!(any.value, exit.write_to_bytes().unwrap());
        assert!(packed(topics::TASK_UNKNOWN_TOPIC, &exit).is_err());
    }
}
