//! Events to containerd (`Events/Forward` on TTRPC_ADDRESS), sent in order
//! by one thread so that no request or exit waits on containerd. The
//! connection is made when the first event goes out and made again if
//! containerd restarted.

use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::{Client, EventsClient};
use containerd_shim::util::{connect, convert_to_any, timestamp};
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
        match convert_to_any(event) {
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
