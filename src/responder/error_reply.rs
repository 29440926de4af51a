//! `error_reply`: what the customer hears when no model answered a turn. Not a saved part (it
//! is not an answer: a retried turn runs the agent again rather than repeat it), so the checks
//! the parts get from their marks are made here, just before the send.

use super::deliver::{turn_last_customer_at, Sender};
use crate::inbox::{LaneKey, Store, TurnOutcome};
use crate::metrics::SendOutcome;
use crate::retry;
use crate::whatsapp::window;

/// Sends `error_reply` for a turn in which no model answered, and records the turn as failed
/// with `reason`: `wagate inbox` lists it, `wagate retry` re-runs it, metrics count it failed.
///
/// The error reply is not saved as the turn's reply: it is not an answer, so `wagate retry`
/// must not see the turn as partly answered, and a resumed turn runs the agent again rather
/// than repeat the apology. Outside the 24-hour window it is not sent at all.
pub(super) async fn send_error_reply(
    sender: &Sender<'_>,
    turn: &crate::inbox::Turn,
    error_reply: &str,
    reason: String,
) -> TurnOutcome {
    let (graph, metrics) = (sender.graph, sender.metrics);
    let failed = TurnOutcome::Failed(format!("no reply from the agent: {reason}"));
    if error_reply.trim().is_empty() {
        return failed;
    }
    if !sender
        .may_send_free_form(&turn.lane, turn_last_customer_at(turn))
        .await
    {
        return TurnOutcome::Failed(format!(
            "no reply from the agent: {reason}; error_reply not sent: {}",
            window::OUTSIDE_WINDOW
        ));
    }
    // Not a saved part, so not fenced by its marks: another replica that took the
    // conversation over (PostgreSQL) answers it; this one sends nothing more. Nor does it
    // once a person has the conversation or the customer opted out (on any replica).
    if let Ok(false) = sender.store.holds_turn(turn.id).await {
        return failed;
    }
    if silenced(sender.store, &turn.lane).await {
        return TurnOutcome::Done;
    }
    let from = &turn.lane.phone_number_id;
    let quoted = turn.last_message().message_id.as_str();
    match graph
        .send_text(from, &turn.lane.user, error_reply, Some(quoted))
        .await
    {
        Ok(_) => {
            metrics.graph_send(SendOutcome::Accepted, "");
            failed
        }
        Err(e) if e.is_retryable() => {
            metrics.graph_send(SendOutcome::RetryLater, "");
            TurnOutcome::RetryLater {
                after: retry::TURN_AFTER_GRAPH_OUTAGE,
                reason: format!("error_reply not sent: {e}"),
            }
        }
        Err(e) => {
            let code = e.code().map(|c| c.to_string()).unwrap_or_default();
            metrics.graph_send(SendOutcome::FinalError, &code);
            TurnOutcome::Failed(format!(
                "no reply from the agent: {reason}; error_reply not sent: {e}"
            ))
        }
    }
}

/// A person has the conversation or the customer opted out, as the store says now (read
/// errors say no: the apology is not worth losing to a hiccup, and the turn's mirror check
/// ran already).
async fn silenced(store: &Store, lane: &LaneKey) -> bool {
    let with_person = matches!(
        store.holder(lane.clone()).await,
        Ok(crate::inbox::store::Holder::Human)
    );
    with_person || store.is_opted_out(lane.clone()).await.unwrap_or(false)
}
