//! Human handoff: a person takes a conversation over, the agent stays silent, and the person
//! hands it back (or a timer does).
//!
//! The state (`agent` / `human`) lives in the store, so it survives restarts; this service keeps
//! a mirror of the `human` conversations in memory for the hot paths (a turn about to start, the
//! metrics) and does everything around a state change: stopping a running turn, the notice to
//! the customer, the console's live events, `handoff.notify_url`, the metrics.
//!
//! - `takeover`: the state machine, to a person and back, and what follows each change.
//! - `turn_guard`: a running turn's claim on its conversation, stopped by a take-over.
//! - [`hours`]: `handoff.hours` in an IANA time zone.
//! - [`outbox`]: operator replies, and the sender of them and of the handoff notices, part
//!   by part, exactly once.
//! - [`sweeper`]: gives conversations back after `release_after_seconds` without a reply.
//! - `opt_out`: STOP and START keywords at intake, and what follows an opt-out's commit.
//! - [`events`]: server-sent events for the console.
//! - [`replicas`]: with several replicas on PostgreSQL, the mirrors follow the others' changes
//!   (told at once by a `NOTIFY`, read again every 2 s in case one was lost).

pub mod events;
pub mod hours;
mod intake;
mod notify;
mod opt_out;
pub mod outbox;
pub mod replicas;
pub mod sweeper;
mod takeover;
mod turn_guard;

pub use turn_guard::TurnGuard;

use crate::inbox::store::HumanConversation;
use crate::inbox::{LaneKey, Store, StoreError};
use crate::live_config::SharedConfig;
use crate::memory::Memory;
use crate::metrics::{HandoffTrigger, Metrics};
use crate::whatsapp::graph::GraphClient;
use events::Events;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What moved a conversation to a person (the metric label and the `trigger` shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Operator,
    Keyword,
    Tool,
}

impl Trigger {
    /// The trigger as `wagate_handoffs_total` labels it.
    pub fn label(self) -> HandoffTrigger {
        match self {
            Trigger::Operator => HandoffTrigger::Operator,
            Trigger::Keyword => HandoffTrigger::Keyword,
            Trigger::Tool => HandoffTrigger::Tool,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Operator => "operator",
            Trigger::Keyword => "keyword",
            Trigger::Tool => "tool",
        }
    }
}

/// The time, injectable so tests can move it (hours, the release timer, the 24 h window).
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// Where the outbox gets the Graph client in force (the responder's, so the channel's rate
/// limit is shared with the agent's replies).
pub type GraphSource = Arc<dyn Fn() -> Option<GraphClient> + Send + Sync>;

/// An operator reply accepted for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorReply {
    pub id: i64,
    /// The 24-hour window is closed: the reopen template goes out first and this reply waits
    /// for the customer's next message.
    pub held: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("unknown conversation")]
    UnknownConversation,
    #[error("the reply is empty")]
    EmptyReply,
    #[error("the customer's last message is older than 24 hours; WhatsApp only accepts a template message now (set window.reopen_template to send one and hold the reply)")]
    OutsideWindow,
    #[error("the customer opted out; nothing is sent until they write a resume keyword (opt_out.resume_keywords)")]
    OptedOut,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Handoff {
    store: Store,
    config: SharedConfig,
    metrics: Arc<Metrics>,
    pub events: Events,
    clock: Clock,
    /// Conversations a person has (mirror of the store).
    humans: Mutex<HashMap<LaneKey, HumanConversation>>,
    /// Opted-out customers (mirror of the store), with Meta's timestamp of their STOP.
    opted_out: Mutex<HashMap<LaneKey, i64>>,
    /// Turns running now, to stop when their conversation is taken over.
    running: Mutex<HashMap<LaneKey, (u64, CancellationToken)>>,
    next_guard: std::sync::atomic::AtomicU64,
    graph: OnceLock<GraphSource>,
    memory: OnceLock<Memory>,
    http: reqwest::Client,
    outbox_wake: Notify,
    /// Read the conversations' state again now (a part was refused for a change this
    /// replica's mirror has not seen yet): see [`replicas`].
    sync_wanted: Notify,
    /// Some outbox message is held for the 24-hour window: a customer message wakes the outbox.
    outbox_holds: std::sync::atomic::AtomicBool,
    /// Cancelled at shutdown: ends the console's event streams and the background tasks.
    stopping: CancellationToken,
    /// The outbox sender, awaited at shutdown so a send in flight is recorded before exit.
    outbox_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The opaque id of a conversation in the operator API.
pub fn conversation_id(lane: &LaneKey) -> String {
    hex::encode(format!("{}\n{}", lane.phone_number_id, lane.user))
}

/// The conversation an id names, if it is one of ours.
pub fn parse_conversation_id(id: &str) -> Option<LaneKey> {
    let text = String::from_utf8(hex::decode(id).ok()?).ok()?;
    let (phone_number_id, user) = text.split_once('\n')?;
    if phone_number_id.is_empty() || user.is_empty() {
        return None;
    }
    Some(LaneKey {
        phone_number_id: phone_number_id.into(),
        user: user.into(),
    })
}

/// Waiting for a person: handed over by a keyword or the agent, and no operator has replied
/// yet (an operator who took a conversation over is already there).
pub fn is_waiting(h: &HumanConversation) -> bool {
    h.last_operator_at.is_none() && h.trigger.as_deref() != Some(Trigger::Operator.as_str())
}

fn millis(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

impl Handoff {
    /// The service, with the `human` conversations loaded from the store.
    pub async fn start(
        store: Store,
        config: SharedConfig,
        metrics: Arc<Metrics>,
        clock: Option<Clock>,
    ) -> Result<Arc<Handoff>, StoreError> {
        let humans = store
            .human_conversations()
            .await?
            .into_iter()
            .map(|h| (h.lane.clone(), h))
            .collect();
        let opted_out = store
            .opted_out_conversations()
            .await?
            .into_iter()
            .map(|o| (o.lane, o.timestamp))
            .collect();
        let handoff = Arc::new(Handoff {
            store,
            config,
            metrics,
            events: Events::default(),
            clock: clock.unwrap_or_else(|| Arc::new(jiff::Timestamp::now)),
            humans: Mutex::new(humans),
            opted_out: Mutex::new(opted_out),
            running: Mutex::new(HashMap::new()),
            next_guard: std::sync::atomic::AtomicU64::new(0),
            graph: OnceLock::new(),
            memory: OnceLock::new(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            outbox_wake: Notify::new(),
            sync_wanted: Notify::new(),
            outbox_holds: std::sync::atomic::AtomicBool::new(true),
            stopping: CancellationToken::new(),
            outbox_task: Mutex::new(None),
        });
        handoff.refresh_metrics();
        Ok(handoff)
    }

    /// Plug in the Graph client source (the responder's) and the conversation memory.
    pub fn connect(&self, graph: GraphSource, memory: Option<Memory>) {
        let _ = self.graph.set(graph);
        if let Some(memory) = memory {
            let _ = self.memory.set(memory);
        }
        self.outbox_wake.notify_one();
    }

    pub fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }

    /// The service's clock (for the 24-hour window everywhere).
    pub fn clock(&self) -> Clock {
        Arc::clone(&self.clock)
    }

    /// Look at the outbox now (a reopen template was queued, say).
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// `window.reopen_template` in force, as the message it sends.
    pub fn reopen_template(&self) -> Option<crate::whatsapp::graph::OutgoingMessage> {
        let loaded = self.config.current();
        let template = &loaded.config.whatsapp.window.reopen_template;
        template
            .is_set()
            .then(|| crate::whatsapp::graph::OutgoingMessage::Template {
                name: template.name.clone(),
                language: template.language.clone(),
                components: template.components.clone(),
            })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether a person has the conversation now.
    pub fn is_human(&self, lane: &LaneKey) -> bool {
        lock(&self.humans).contains_key(lane)
    }

    /// Delivery statuses arrived for these outbound messages (the console's ticks).
    pub fn statuses_recorded(&self, message_ids: Vec<String>) {
        if !message_ids.is_empty() {
            self.events
                .send("status", json!({ "message_ids": message_ids }));
        }
    }

    /// A turn sent (some of) its reply: the console shows it.
    pub fn agent_replied(&self, lane: &LaneKey) {
        self.events.send(
            "message",
            json!({"conversation": conversation_id(lane), "direction": "out", "author": "agent"}),
        );
    }

    /// Gauges: conversations waiting for a person (no operator reply yet) and the oldest wait.
    pub fn refresh_metrics(&self) {
        let now = millis(self.now());
        let humans = lock(&self.humans);
        let waiting: Vec<i64> = humans
            .values()
            .filter(|h| is_waiting(h))
            .map(|h| h.since)
            .collect();
        drop(humans);
        let oldest = waiting
            .iter()
            .min()
            .map_or(0.0, |since| ((now - since).max(0) as f64) / 1000.0);
        self.metrics
            .handoff_waiting_conversations
            .set(waiting.len() as i64);
        self.metrics.handoff_oldest_wait_seconds.set(oldest);
    }

    /// What the console shows about a conversation a person has.
    pub fn human_info(&self, lane: &LaneKey) -> Option<HumanConversation> {
        lock(&self.humans).get(lane).cloned()
    }

    /// Cancelled when the server stops.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Start the outbox sender and the release sweeper; both end at [`Handoff::stop`].
    pub fn spawn_tasks(self: &Arc<Self>) {
        let release_after = self
            .config
            .current()
            .config
            .whatsapp
            .handoff
            .release_after_seconds;
        let outbox = tokio::spawn(outbox::run(Arc::clone(self), self.stopping.clone()));
        *lock(&self.outbox_task) = Some(outbox);
        tokio::spawn(sweeper::run(
            Arc::clone(self),
            sweeper::period(release_after),
            self.stopping.clone(),
        ));
        if self.store.is_shared() {
            tokio::spawn(replicas::run(Arc::clone(self), self.stopping.clone()));
        }
    }

    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// After [`Handoff::stop`]: wait (up to `grace`) for the outbox to finish the round it is
    /// in, so a message Meta accepted is recorded as sent before the process exits.
    pub async fn stopped(&self, grace: Duration) {
        let task = lock(&self.outbox_task).take();
        if let Some(task) = task {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("the outbox was still sending at the end of the grace period");
            }
        }
    }

    /// The `human` conversations (mirror), for the sweeper.
    fn humans_snapshot(&self) -> Vec<HumanConversation> {
        lock(&self.humans).values().cloned().collect()
    }
}

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
