//! A turn handler that records what the dispatcher hands it. For dispatcher-level tests
//! (ordering, dedupe, resume); the end-to-end tests use the production handler with fake
//! model and Graph servers instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wagate::inbox::{Turn, TurnHandler, TurnOutcome};

#[derive(Default)]
pub struct Recorder {
    turns: Mutex<Vec<Turn>>,
    /// Each turn sleeps this long before finishing (to let messages pile up, or to be
    /// interrupted by a shutdown).
    pub delay: Duration,
}

impl Recorder {
    pub fn new(delay: Duration) -> Arc<Recorder> {
        Arc::new(Recorder {
            turns: Mutex::new(Vec::new()),
            delay,
        })
    }

    pub fn turns(&self) -> Vec<Turn> {
        self.turns.lock().unwrap().clone()
    }

    /// Every message id handed over, in the order turns ran.
    pub fn message_ids(&self) -> Vec<String> {
        self.turns()
            .iter()
            .flat_map(|t| t.messages.iter().map(|m| m.message_id.clone()))
            .collect()
    }
}

impl TurnHandler for Recorder {
    fn handle(&self, turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.turns.lock().unwrap().push(turn);
            TurnOutcome::Done
        })
    }
}
