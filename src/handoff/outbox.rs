//! The outbox: operator replies, accepted by [`Handoff::reply`], handoff notices and the
//! window's reopen templates, sent through the same Graph client as the agent's replies (the
//! channel's rate limit, per-user pacing and retries) and the same exactly-once part sending
//! (`responder::deliver`, whose send fence also checks, part by part, that the message is
//! still pending and, with several replicas, still this replica's to send).
//!
//! One task sends everything in order: operator traffic is small, and a single sender means no
//! two tasks can ever send the same part.

use super::{conversation_id, lock, millis, Handoff, HandoffError, OperatorReply};
use crate::inbox::store::{outbox_key, OutboxItem};
use crate::inbox::LaneKey;
use crate::memory::{self, MemoryEntry};
use crate::responder::deliver::{Delivered, Delivery, Sender};
use crate::whatsapp::graph::GraphClient;
use crate::whatsapp::{format, split};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pending messages are looked at this often even without a wake-up (retries, a restart).
const POLL_EVERY: Duration = Duration::from_secs(10);
/// After Meta stayed unreachable through the client's own retries.
const RETRY_AFTER: Duration = Duration::from_secs(15);

impl Handoff {
    /// An operator's reply: checked against the 24-hour window, queued (formatted and split
    /// like the agent's replies) and sent by the outbox. Outside the window it is refused,
    /// unless `window.reopen_template` is set: then it is queued and held, and the outbox sends
    /// the template first. Returns its id and whether it is held.
    pub async fn reply(&self, lane: &LaneKey, text: &str) -> Result<OperatorReply, HandoffError> {
        if self.store.is_opted_out(lane.clone()).await? {
            return Err(HandoffError::OptedOut);
        }
        let last = self
            .store
            .last_customer_at(lane.clone())
            .await?
            .ok_or(HandoffError::UnknownConversation)?;
        let held = !crate::whatsapp::window::is_open(last, millis(self.now()));
        if held && self.reopen_template().is_none() {
            return Err(HandoffError::OutsideWindow);
        }
        let parts = split::split_message(&format::to_whatsapp(text), split::WHATSAPP_TEXT_LIMIT);
        if parts.is_empty() {
            return Err(HandoffError::EmptyReply);
        }
        let id = self
            .store
            .queue_operator_reply(lane.clone(), text.to_owned(), parts)
            .await?
            .ok_or(HandoffError::OptedOut)?;
        if let Some(h) = lock(&self.humans).get_mut(lane) {
            h.last_operator_at = Some(millis(self.now()));
        }
        self.metrics.operator_replies.inc();
        self.refresh_metrics();
        self.events.send(
            "message",
            json!({"conversation": conversation_id(lane), "direction": "out", "author": "operator", "id": id}),
        );
        self.outbox_wake.notify_one();
        Ok(OperatorReply { id, held })
    }
}

/// The sender task; ends when `stop` is cancelled.
pub async fn run(handoff: Arc<Handoff>, stop: CancellationToken) {
    loop {
        let retry = send_pending(&handoff).await;
        let wait = if retry { RETRY_AFTER } else { POLL_EVERY };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = handoff.outbox_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Send everything pending; `true` when something must be tried again later.
async fn send_pending(handoff: &Handoff) -> bool {
    let Some(graph) = handoff.graph.get().and_then(|source| source()) else {
        return false; // not connected yet
    };
    let items = match handoff.store.pending_outbox().await {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox; trying again later");
            return true;
        }
    };
    let mut retry = false;
    let mut held = false;
    for item in items {
        match send(handoff, &graph, &item).await {
            Sent::Done => remember(handoff, &item).await,
            Sent::Failed | Sent::LeftAlone => {}
            Sent::Held => held = true,
            Sent::Later => retry = true,
        }
    }
    handoff
        .outbox_holds
        .store(held, std::sync::atomic::Ordering::Relaxed);
    retry
}

enum Sent {
    Done,
    Failed,
    /// Not this replica's to send any more (see `Delivered::Refused`).
    LeftAlone,
    Later,
    /// Waiting for the customer to reopen the 24-hour window.
    Held,
}

/// Sends the message's parts through the same exactly-once path as a turn's reply (marked
/// `sending` before each Graph call, confirmed by the status notification after a crash), and
/// the same 24-hour window: outside it, the message is held behind the reopen template.
async fn send(handoff: &Handoff, graph: &GraphClient, item: &OutboxItem) -> Sent {
    let sender = Sender {
        graph,
        store: &handoff.store,
        metrics: &handoff.metrics,
        clock: &handoff.clock,
        reopen_template: handoff.reopen_template(),
    };
    let delivery = Delivery {
        key: outbox_key(item.id),
        lane: &item.lane,
        quote: None,
        last_customer_at: None,
    };
    match sender.send_parts(&delivery, item.parts.clone()).await {
        Delivered::Done => {}
        Delivered::Held { template_queued } => {
            if template_queued {
                // The template is a new outbox message: send it now, not at the next poll.
                handoff.outbox_wake.notify_one();
            }
            return Sent::Held;
        }
        Delivered::RetryLater(reason) => {
            tracing::warn!(outbox_id = item.id, reason = %reason, "outbox message not sent yet; trying again later");
            return Sent::Later;
        }
        // Cancelled by an opt-out, or (PostgreSQL) another replica claimed it after this
        // one's claim ran out: that replica finishes it; this one sends nothing more of it.
        Delivered::Refused(refusal) => {
            tracing::warn!(outbox_id = item.id, reason = %refusal, "outbox message left alone");
            return Sent::LeftAlone;
        }
        Delivered::Failed(reason) => {
            tracing::warn!(outbox_id = item.id, reason = %reason, "operator message failed");
            if let Err(e) = handoff
                .store
                .finish_outbox(item.id, None, Some(reason))
                .await
            {
                tracing::error!(outbox_id = item.id, error = %e, "cannot record a failed message");
            }
            return Sent::Failed;
        }
    }
    if let Err(e) = handoff.store.finish_outbox(item.id, None, None).await {
        tracing::error!(outbox_id = item.id, error = %e, "cannot close a sent message; it is looked at again later");
        return Sent::Later;
    }
    handoff.events.send(
        "message",
        json!({"conversation": conversation_id(&item.lane), "direction": "out", "author": item.author, "id": item.id}),
    );
    Sent::Done
}

/// An operator's words go into the conversation memory, so the agent knows them later, after
/// what the customer wrote to the person since the previous reply (which the agent never saw).
/// Keyed by the negated outbox id (turn ids are positive): appending twice stores once.
async fn remember(handoff: &Handoff, item: &OutboxItem) {
    if item.author != "operator" {
        return;
    }
    let since = handoff.human_info(&item.lane).map(|h| h.since);
    let after = item
        .previous_reply_at
        .into_iter()
        .chain(since)
        .max()
        .unwrap_or(0);
    let mut entries = held(handoff, &item.lane, after, item.created_at).await;
    entries.push(MemoryEntry::assistant(
        item.text.clone(),
        memory::unix_now(),
    ));
    append(handoff, &item.lane, -item.id, &entries).await;
}

/// At the release: what the customer wrote to the person after the last operator reply goes
/// into memory too, so the agent picks up the whole conversation.
pub(super) async fn remember_since(handoff: &Handoff, lane: &LaneKey, after: i64, now: i64) {
    let entries = held(handoff, lane, after, now).await;
    if !entries.is_empty() {
        // Negative like operator replies, and far below any outbox id.
        append(handoff, lane, -now, &entries).await;
    }
}

async fn held(handoff: &Handoff, lane: &LaneKey, after: i64, until: i64) -> Vec<MemoryEntry> {
    if handoff.memory.get().is_none() {
        return Vec::new();
    }
    match handoff
        .store
        .held_messages(lane.clone(), after, until)
        .await
    {
        Ok(held) => held
            .into_iter()
            .filter(|(text, _)| !text.trim().is_empty())
            .map(|(text, at)| MemoryEntry::user(text, at / 1000))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the customer's messages to the person for memory");
            Vec::new()
        }
    }
}

async fn append(handoff: &Handoff, lane: &LaneKey, key_id: i64, entries: &[MemoryEntry]) {
    let Some(memory) = handoff.memory.get() else {
        return;
    };
    if let Err(e) = memory
        .append(&memory::key_for_whatsapp(&lane.user), key_id, entries)
        .await
    {
        tracing::warn!(error = %e, "operator conversation not kept in memory");
    }
}
