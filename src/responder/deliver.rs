//! Sending a saved reply, part by part, exactly once.
//!
//! Each part Meta accepted is committed (with the outbound id Meta returned) before the next
//! part goes out; parts already accepted by an earlier attempt are skipped. Only the first part
//! of a reply quotes the inbound message.

use crate::inbox::{ReplyPart, Store, StoreError, Turn, TurnOutcome};
use crate::metrics::Metrics;
use crate::whatsapp::graph::{GraphClient, GraphError};
use std::time::Duration;

/// How long a turn waits before trying again when Meta stayed unreachable through every retry.
const RETRY_TURN_AFTER: Duration = Duration::from_secs(30);

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
        if !first && !graph.is_dry_run() {
            tokio::time::sleep(graph.reply_part_interval()).await;
        }
        first = false;
        let reply_to = (part.index == 0).then_some(quoted);
        match graph.send_text(from, to, &part.text, reply_to).await {
            Ok(sent) => {
                metrics.inc(
                    "wagate_graph_sends_total",
                    &[("outcome", "accepted"), ("code", "")],
                );
                if let Err(e) = record_sent(store, turn.id, part.index, sent.id).await {
                    // Meta has the part but we could not record it: stop here rather than risk
                    // sending the next parts twice; the turn resumes later and may repeat this one.
                    tracing::error!(turn_id = turn.id, error = %e, "cannot record an accepted reply part");
                    return TurnOutcome::RetryLater {
                        after: RETRY_TURN_AFTER,
                        reason: e.to_string(),
                    };
                }
            }
            Err(e) => return failed_part(store, metrics, turn, part, e).await,
        }
    }
    TurnOutcome::Done
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
        return TurnOutcome::RetryLater {
            after: RETRY_TURN_AFTER,
            reason,
        };
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
