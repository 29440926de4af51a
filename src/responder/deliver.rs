//! Sending a saved reply, part by part, exactly once.
//!
//! Each part is marked `sending` (committed) before the Graph call and `sent`, with the id Meta
//! returned, after it; the next part goes out only then. Every send carries
//! `biz_opaque_callback_data` naming its part, which Meta echoes in the part's status
//! notifications. A part found `sending` when a turn resumes was handed to Meta by an attempt
//! that never recorded the answer (a kill -9 in between, a lost connection): its status
//! notification settles it, and it is sent again only when none arrives within
//! [`CONFIRM_WINDOW`] of the restart. Only the first part of a reply quotes the inbound message.

use crate::inbox::{ReplyPart, Store, StoreError, Turn, TurnOutcome, CONFIRM_WINDOW};
use crate::metrics::Metrics;
use crate::whatsapp::graph::{GraphClient, GraphError};
use std::time::Duration;

/// How long a turn waits before trying again when Meta stayed unreachable through every retry.
const RETRY_TURN_AFTER: Duration = Duration::from_secs(30);
/// How often a resumed turn looks for the status notification of a part left `sending`.
const CONFIRM_POLL: Duration = Duration::from_millis(200);

pub(super) async fn send_parts(
    graph: &GraphClient,
    store: &Store,
    metrics: &Metrics,
    turn: &Turn,
    parts: Vec<ReplyPart>,
) -> TurnOutcome {
    let from = &turn.lane.phone_number_id;
    let to = &turn.lane.user;
    let quoted = turn.last_message().message_id.as_str();
    let mut first = true;
    for part in parts.iter().filter(|p| p.outbound_id.is_none()) {
        if let Some(since) = part.sending_since {
            match settle(store, turn.id, part.index, since).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return retry_later(format!("cannot settle a reply part: {e}")),
            }
        }
        if !first && !graph.is_dry_run() {
            tokio::time::sleep(graph.reply_part_interval()).await;
        }
        first = false;
        let reply_to = (part.index == 0).then_some(quoted);
        let callback = store.part_ref(turn.id, part.index).callback_data();
        if let Err(e) = store.mark_part_sending(turn.id, part.index).await {
            return retry_later(format!("cannot mark a reply part as sending: {e}"));
        }
        let sent = graph
            .send_text_tagged(from, to, &part.text, reply_to, Some(&callback))
            .await;
        match sent {
            Ok(sent) => {
                metrics.inc(
                    "wagate_graph_sends_total",
                    &[("outcome", "accepted"), ("code", "")],
                );
                if let Err(e) = record_sent(store, turn.id, part.index, sent.id).await {
                    // Meta has the part but we could not record it: stop here. The part stays
                    // `sending`, so the resumed turn waits for its status instead of repeating it.
                    tracing::error!(turn_id = turn.id, error = %e, "cannot record an accepted reply part");
                    return retry_later(e.to_string());
                }
            }
            Err(e) => {
                // Meta answered with an error: it does not have the part. Without an answer
                // (timeout, connection lost) it may have it: the part stays `sending`.
                if e.api().is_some() {
                    if let Err(e) = store.clear_part_sending(turn.id, part.index).await {
                        tracing::warn!(turn_id = turn.id, error = %e, "cannot clear a refused part's sending mark");
                    }
                }
                return failed_part(store, metrics, turn, part, e).await;
            }
        }
    }
    TurnOutcome::Done
}

fn retry_later(reason: String) -> TurnOutcome {
    TurnOutcome::RetryLater {
        after: RETRY_TURN_AFTER,
        reason,
    }
}

/// A part an earlier attempt handed to Meta without recording the answer: `true` once its
/// status notification confirms Meta has it, `false` when none came by the deadline (it is
/// then sent again). The deadline is [`CONFIRM_WINDOW`] after the later of the mark and this
/// process's start, so notifications Meta held back while the server was down have time to
/// arrive.
async fn settle(store: &Store, turn_id: i64, index: usize, since: i64) -> Result<bool, StoreError> {
    let window = i64::try_from(CONFIRM_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let deadline = since.max(store.opened_at_millis()).saturating_add(window);
    tracing::info!(
        turn_id,
        part = index + 1,
        "reply part was handed to Meta before a restart; waiting for its status notification"
    );
    loop {
        if store.part_outbound_id(turn_id, index).await?.is_some() {
            tracing::info!(
                turn_id,
                part = index + 1,
                "reply part confirmed by its status notification; not sent again"
            );
            return Ok(true);
        }
        let left = deadline - chrono::Utc::now().timestamp_millis();
        if left <= 0 {
            tracing::warn!(
                turn_id,
                part = index + 1,
                window_seconds = CONFIRM_WINDOW.as_secs(),
                "no status notification for a reply part handed to Meta before a restart; sending it again"
            );
            return Ok(false);
        }
        tokio::time::sleep(CONFIRM_POLL.min(Duration::from_millis(left as u64))).await;
    }
}

/// Meta has the part: recording it is what keeps it from being sent again, so a failed commit
/// (a locked database, say) is tried a few more times before the turn gives up.
async fn record_sent(
    store: &Store,
    turn_id: i64,
    index: usize,
    outbound_id: String,
) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match store
            .mark_part_sent(turn_id, index, outbound_id.clone())
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 5 => return Err(e),
            Err(e) => {
                tracing::warn!(turn_id, attempt, error = %e, "recording an accepted reply part failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
        }
    }
}

async fn failed_part(
    store: &Store,
    metrics: &Metrics,
    turn: &Turn,
    part: &ReplyPart,
    error: GraphError,
) -> TurnOutcome {
    let code = error.code().map(|c| c.to_string()).unwrap_or_default();
    let reason = format!("reply part {} not sent: {error}", part.index + 1);
    if error.is_retryable() {
        // The client already retried with backoff; Meta is down or throttling hard. Keep the
        // turn and try again later: the parts already accepted stay accepted.
        metrics.inc(
            "wagate_graph_sends_total",
            &[("outcome", "retry_later"), ("code", &code)],
        );
        return retry_later(reason);
    }
    // Final (131047 outside the 24 h window, 131026 undeliverable, 190 token, ...): the client
    // logged the code and details; record it on the part and on the turn.
    metrics.inc(
        "wagate_graph_sends_total",
        &[("outcome", "final_error"), ("code", &code)],
    );
    if let Err(e) = store
        .mark_part_failed(turn.id, part.index, reason.clone())
        .await
    {
        tracing::error!(turn_id = turn.id, error = %e, "cannot record a failed reply part");
    }
    TurnOutcome::Failed(reason)
}

/// Sends `error_reply` for a turn in which no model answered, and records the turn as failed
/// with `reason`: `wagate inbox` lists it, `wagate retry` re-runs it, metrics count it failed.
///
/// The error reply is not saved as the turn's reply: it is not an answer, so `wagate retry`
/// must not see the turn as partly answered, and a resumed turn runs the agent again rather
/// than repeat the apology.
pub(super) async fn send_error_reply(
    graph: &GraphClient,
    metrics: &Metrics,
    turn: &Turn,
    error_reply: &str,
    reason: String,
) -> TurnOutcome {
    let failed = TurnOutcome::Failed(format!("no reply from the agent: {reason}"));
    if error_reply.trim().is_empty() {
        return failed;
    }
    let from = &turn.lane.phone_number_id;
    let quoted = turn.last_message().message_id.as_str();
    match graph
        .send_text(from, &turn.lane.user, error_reply, Some(quoted))
        .await
    {
        Ok(_) => {
            metrics.inc(
                "wagate_graph_sends_total",
                &[("outcome", "accepted"), ("code", "")],
            );
            failed
        }
        Err(e) if e.is_retryable() => {
            metrics.inc(
                "wagate_graph_sends_total",
                &[("outcome", "retry_later"), ("code", "")],
            );
            TurnOutcome::RetryLater {
                after: RETRY_TURN_AFTER,
                reason: format!("error_reply not sent: {e}"),
            }
        }
        Err(e) => {
            let code = e.code().map(|c| c.to_string()).unwrap_or_default();
            metrics.inc(
                "wagate_graph_sends_total",
                &[("outcome", "final_error"), ("code", &code)],
            );
            TurnOutcome::Failed(format!(
                "no reply from the agent: {reason}; error_reply not sent: {e}"
            ))
        }
    }
}
