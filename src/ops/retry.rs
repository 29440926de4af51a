//! `wagate retry ID`: put a failed turn's messages back in the inbox so the next claim of the
//! conversation answers them in a new turn.
//!
//! The failed turn is closed as `requeued` and keeps its reply parts, so the record of what was
//! (or was not) sent stays as it was. Its messages go back to `pending`; the running server's
//! periodic re-scan of the inbox (or its next start) picks the conversation up; with
//! `--database`, whichever replica scans first.

use super::OpsError;
use crate::inbox::store::{DatabaseLocation, OperatorDb, Requeue};

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub turn_id: i64,
    /// Messages put back to `pending`.
    pub messages: usize,
    /// Reply parts Meta had already accepted (non-zero only with `force`).
    pub parts_already_sent: usize,
}

/// Re-queues failed turn `turn_id`. Refuses a turn whose reply was partly accepted by Meta
/// unless `force`: the customer already has part of an answer, and the new turn writes another.
pub fn retry(
    database: impl Into<DatabaseLocation>,
    turn_id: i64,
    force: bool,
) -> Result<Requeued, OpsError> {
    let mut db = OperatorDb::open_at(&database.into(), true)?;
    outcome(turn_id, db.requeue(turn_id, force)?)
}

/// What the store's re-queue of `turn_id` means for the operator (the CLI's or the console's).
pub fn outcome(turn_id: i64, requeue: Requeue) -> Result<Requeued, OpsError> {
    match requeue {
        Requeue::Done {
            messages,
            parts_already_sent,
        } => Ok(Requeued {
            turn_id,
            messages,
            parts_already_sent,
        }),
        Requeue::NotFound => Err(OpsError::TurnNotFound(turn_id)),
        Requeue::NotFailed(state) => Err(OpsError::TurnNotFailed { id: turn_id, state }),
        Requeue::PartlyAnswered { sent, total } => Err(OpsError::PartlyAnswered {
            id: turn_id,
            sent,
            total,
        }),
        Requeue::NothingToRequeue => Err(OpsError::NothingToRequeue(turn_id)),
    }
}

/// What `wagate retry` prints after re-queuing.
pub fn describe(r: &Requeued) -> String {
    let mut out = format!(
        "turn {} re-queued: {} message(s) are pending again and will be answered in a new turn.\n\
         A running server picks them up at its next inbox scan (about every 15 s); a stopped one \
         at its next start.\n",
        r.turn_id, r.messages
    );
    if r.parts_already_sent > 0 {
        out.push_str(&format!(
            "warning: {} part(s) of the old reply had already reached the customer; they will get \
             a second, new answer.\n",
            r.parts_already_sent
        ));
    }
    out
}
