//! Answered turns' closes, gathered and written together: one statement
//! (`wagate_finish_answered`, migration 6) for every close that is ready at the same moment,
//! instead of one each.
//!
//! A close costs PostgreSQL a round trip, a function call, several statements and a commit for
//! a few rows, and it is off the reply's path: the customer has the answer
//! by the time the turn closes. So the first close to arrive starts a writer task that waits
//! [`GATHER`] for others, writes them all, and goes on while more wait; each caller awaits its
//! own turn's result. Under load the batches grow by themselves (closes pile up while a
//! statement runs), which is when the saving counts (BENCHMARKS.md, "Closes together").
//!
//! Each turn is fenced on its own: a turn whose conversation another replica took over is
//! reported lost ([`StoreError::LeaseLost`]) and the others close. If the statement fails as a
//! whole (PostgreSQL unreachable, say), each close is tried alone, as before this file
//! existed, so one close's trouble never becomes another's. The lease bookkeeping happens in
//! the writer, so a caller that stops waiting loses nothing.
//!
//! Only the common close goes this way: a turn answered (`Done`) under a lease this process
//! holds. A turn whose conversation has messages waiting, when the caller would claim them
//! next, is left by the statement untouched and closed alone with its next turn claimed
//! (`wagate_finish`, `turns.rs`), as are failed turns and turns kept for a retry.

use super::sent_marks::SentMark;
use super::PgStore;
use crate::inbox::store::{StoreError, TurnOutcome};
use crate::inbox::{LaneKey, Turn};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long the writer waits, after the first close, for others to join its statement. The
/// turn's slot is held meanwhile (the reply is already sent), so this is kept well under a
/// turn's own length.
const GATHER: Duration = Duration::from_millis(5);

/// At most this many closes in one statement (a replica runs at most 64 turns at once).
const MAX_PER_STATEMENT: usize = 64;

/// A close waiting for the writer.
struct Waiting {
    turn_id: i64,
    lane: LaneKey,
    fence: i64,
    /// The caller claims the conversation's next turn if messages wait.
    claim_next: bool,
    sent: Option<SentMark>,
    answer: oneshot::Sender<Result<Option<Turn>, StoreError>>,
}

/// The closes waiting, and whether a writer task is running for them.
#[derive(Default)]
pub(crate) struct Closes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiting>,
    writing: bool,
    /// Statements written so far (tests: several closes take one).
    #[cfg(test)]
    statements: usize,
}

impl Closes {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a close; `true` when no writer runs yet (the caller starts one).
    fn push(&self, close: Waiting) -> bool {
        let mut state = self.lock();
        state.waiting.push(close);
        !std::mem::replace(&mut state.writing, true)
    }

    /// The next statement's closes; none (and the writer ends) when nothing waits.
    fn next_batch(&self) -> Vec<Waiting> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.writing = false;
            return Vec::new();
        }
        let take = state.waiting.len().min(MAX_PER_STATEMENT);
        #[cfg(test)]
        {
            state.statements += 1;
        }
        state.waiting.drain(..take).collect()
    }

    #[cfg(test)]
    pub(crate) fn statements(&self) -> usize {
        self.lock().statements
    }
}

impl PgStore {
    /// Close answered turn `turn_id` together with the closes ready beside it (with
    /// `claim_next`, its conversation's next turn when messages wait, claimed by a close of its
    /// own); `None` when this process holds no lease for the turn (the caller closes it
    /// alone, which reports the loss as before).
    pub(super) async fn close_answered(
        &self,
        turn_id: i64,
        claim_next: bool,
    ) -> Option<Result<Option<Turn>, StoreError>> {
        let (lane, held) = self.inner.leases.by_turn(turn_id)?;
        let (answer, result) = oneshot::channel();
        let close = Waiting {
            turn_id,
            lane,
            fence: held.fence,
            claim_next,
            sent: self.take_sent_mark(turn_id),
            answer,
        };
        if self.inner.closes.push(close) {
            tokio::spawn(self.clone().write_closes());
        }
        Some(result.await.unwrap_or_else(|_| {
            Err(StoreError::Postgres(
                "the writer of turn closes stopped before this one".to_owned(),
            ))
        }))
    }

    /// The writer: gathers, writes, and goes on while closes wait.
    async fn write_closes(self) {
        loop {
            tokio::time::sleep(GATHER).await;
            let batch = self.inner.closes.next_batch();
            if batch.is_empty() {
                return;
            }
            self.write_batch(batch).await;
        }
    }

    async fn write_batch(&self, batch: Vec<Waiting>) {
        match self.finish_answered(&batch).await {
            Ok(closed) => {
                let mut claim_after = Vec::new();
                for close in batch {
                    let result = match closed.get(&close.turn_id) {
                        Some(Closed::Closed) => {
                            self.inner.leases.remove_fence(close.fence);
                            Ok(None)
                        }
                        Some(Closed::MessagesWait) => {
                            claim_after.push(close);
                            continue;
                        }
                        None => {
                            self.inner.leases.remove_fence(close.fence);
                            Err(StoreError::LeaseLost {
                                turn_id: close.turn_id,
                            })
                        }
                    };
                    let _ = close.answer.send(result);
                }
                // The others are answered first: these take a statement each.
                for close in claim_after {
                    let result = self
                        .close_alone(close.turn_id, TurnOutcome::Done, true)
                        .await;
                    let _ = close.answer.send(result);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, closes = batch.len(), "closing turns together failed; closing each alone");
                for close in batch {
                    if let Some(sent) = close.sent {
                        self.keep_sent_mark(close.turn_id, sent);
                    }
                    let result = self
                        .close_alone(close.turn_id, TurnOutcome::Done, close.claim_next)
                        .await;
                    let _ = close.answer.send(result);
                }
            }
        }
    }

    /// `wagate_finish_answered` for `batch`: what became of each turn still held, by turn.
    async fn finish_answered(&self, batch: &[Waiting]) -> Result<HashMap<i64, Closed>, StoreError> {
        let turns: Vec<i64> = batch.iter().map(|c| c.turn_id).collect();
        let pnids: Vec<&str> = batch
            .iter()
            .map(|c| c.lane.phone_number_id.as_str())
            .collect();
        let customers: Vec<&str> = batch.iter().map(|c| c.lane.user.as_str()).collect();
        let fences: Vec<i64> = batch.iter().map(|c| c.fence).collect();
        let claim_next: Vec<bool> = batch.iter().map(|c| c.claim_next).collect();
        let sent_idx: Vec<Option<i32>> = batch
            .iter()
            .map(|c| c.sent.as_ref().map(|s| s.index))
            .collect();
        let sent_ids: Vec<Option<&str>> = batch
            .iter()
            .map(|c| c.sent.as_ref().map(|s| s.outbound_id.as_str()))
            .collect();
        let sent_at: Vec<Option<i64>> = batch
            .iter()
            .map(|c| c.sent.as_ref().map(|s| s.at))
            .collect();
        let now = crate::inbox::store::now_millis();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT closed_turn, status FROM wagate_finish_answered(
                     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .await
            .map_err(|e| self.error(e))?;
        let rows = client
            .query(
                &stmt,
                &[
                    &self.inner.replica,
                    &turns,
                    &pnids,
                    &customers,
                    &fences,
                    &claim_next,
                    &now,
                    &sent_idx,
                    &sent_ids,
                    &sent_at,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|r| {
                let closed = match r.get::<_, &str>(1) {
                    "closed" => Closed::Closed,
                    "next" => Closed::MessagesWait,
                    // A status this binary does not know (a newer schema's): the batch
                    // fails and each close goes alone, by the function it knows.
                    other => {
                        return Err(StoreError::Postgres(format!(
                            "wagate_finish_answered answered an unknown status {other:?}"
                        )))
                    }
                };
                Ok((r.get(0), closed))
            })
            .collect()
    }
}

/// What the statement did with a turn whose lease this process still held.
enum Closed {
    /// Closed, its lease given up.
    Closed,
    /// Untouched: messages wait and the caller claims them next (closed alone).
    MessagesWait,
}
