//! The intake steps besides the messages' own, on PostgreSQL, inside the webhook's
//! transaction and in SQLite's order: opt-out changes (a STOP's message and what follows it in
//! the body are not answered), keyword handoffs (the conversation goes to a person and the
//! notice is queued), then reactions. Holding the messages of conversations a person has or
//! whose customer opted out follows in `intake.rs` (one read for the whole body).

use super::super::Batch;
use super::{handoff, opt_out, reactions};
use crate::inbox::LaneKey;
use deadpool_postgres::Transaction;
use tokio_postgres::Error;

/// What the steps changed, for the webhook's outcome.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) handed_over: Vec<LaneKey>,
    pub(crate) opted_out: Vec<(LaneKey, i64)>,
    pub(crate) resumed: Vec<LaneKey>,
}

pub(crate) async fn intake_hooks(tx: &Transaction<'_>, batch: &mut Batch) -> Result<Hooks, Error> {
    let (opted_out, resumed) = if batch.opt_changes.is_empty() && batch.handoffs.is_empty() {
        // Nothing to apply, no handoff an opt-out could cancel: the held-message step of
        // `intake.rs` skips an opted-out customer's messages with the same note, in one read
        // for the whole body instead of one per conversation here.
        (Vec::new(), Vec::new())
    } else {
        opt_out::apply(tx, batch).await?
    };
    let handed_over = handoff::keyword_handoffs(tx, batch).await?;
    if batch.messages.iter().any(|m| m.kind == "reaction") {
        reactions::record(tx, batch).await?;
    }
    Ok(Hooks {
        handed_over,
        opted_out,
        resumed,
    })
}
