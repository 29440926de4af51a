//! The outbox sender: operator replies, handoff notices and the window's reopen templates, sent
//! through the same Graph client as the agent's replies (the channel's rate limit, per-user
//! pacing and retries) and the same exactly-once part sending (`responder::deliver`).
//!
//! One task sends everything in order: operator traffic is small, and a single sender means no
//! two tasks can ever send the same part.

use super::{conversation_id, Handoff};
use crate::inbox::store::{outbox_key, OutboxItem};
use crate::inbox::LaneKey;
use crate::memory::{self, MemoryEntry};
use crate::responder::deliver::{Delivered, Delivery, Sender};
use crate::whatsapp::graph::GraphClient;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pending messages are looked at this often even without a wake-up (retries, a restart).
const POLL_EVERY: Duration = Duration::from_secs(10);
/// After Meta stayed unreachable through the client's own retries.
const RETRY_AFTER: Duration = Duration::from_secs(15);

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
            Sent::Failed => {}
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
