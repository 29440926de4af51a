//! Live events for the console (`GET /v1/events`): a broadcast that costs nothing when no
//! console is listening, and drops (never blocks on) a console that reads too slowly.

use serde_json::Value as Json;
use tokio::sync::broadcast;

/// One event: `message` (a message in or out of a conversation), `status` (a delivery status),
/// `conversation` (a state change).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub data: Json,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Events {
    /// Anyone listening? Callers skip building events when not.
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn send(&self, kind: &'static str, data: Json) {
        if self.has_listeners() {
            let _ = self.tx.send(Event { kind, data });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
