//! Webhooks recorded together: concurrent webhooks of the common kind (`intake_lane.rs`)
//! written in one statement (`wagate_record_lanes`, migration 7), a group commit as the SQLite
//! writer does.
//!
//! The webhook's statement is the largest of a message, and much of what it costs PostgreSQL
//! is around it rather than in it: a round trip, a call, a commit and its flush, a backend
//! woken. So a webhook that arrives while another is being written waits for it, and the
//! writer task writes all that waited in the next statement: one of each for all of them
//! (BENCHMARKS.md, "Webhooks together"). Nothing waits on purpose: the first webhook of a
//! quiet moment is written at once, and statements grow only when webhooks pile up, which is
//! when the saving counts.
//!
//! A webhook alone is written by `wagate_record_lane` itself (the loop around it costs a
//! little). Each caller answers Meta's `200` only after the statement's commit, as before:
//! the caller awaits its webhook's rows, which the writer hands out after the commit. If the
//! statement fails on the server (it then rolled back whole), the writer writes each webhook
//! alone, so one webhook's trouble never becomes another's; if PostgreSQL cannot be reached,
//! each caller gets that error (its `503`). The writer owns a copy of
//! the messages, so a caller that stops waiting (its client hung up) loses nothing and
//! leaves no statement half-written.

use super::gather::Gathered;
use super::intake::Columns;
use super::PgStore;
use crate::inbox::store::conversations::HELD_FOR_PERSON;
use crate::inbox::store::opt_out::WHILE_OPTED_OUT;
use crate::inbox::store::turns::MAX_MESSAGES_PER_TURN;
use crate::inbox::store::{Batch, StoreError};
use crate::inbox::LaneKey;
use tokio::sync::oneshot;
use tokio_postgres::Row;

/// At most this many webhooks in one statement.
const MAX_PER_STATEMENT: usize = 64;

/// The column of `wagate_record_lanes`' rows that says whose they are (after
/// `wagate_record_lane`'s sixteen).
const WEBHOOK_COLUMN: usize = 16;

/// A webhook's messages of one conversation, owned by the writer.
pub(crate) struct Waiting {
    lane: LaneKey,
    claim: bool,
    ids: Vec<String>,
    displays: Vec<String>,
    names: Vec<Option<String>>,
    kinds: Vec<String>,
    stamps: Vec<i64>,
    states: Vec<&'static str>,
    notes: Vec<Option<String>>,
    raws: Vec<String>,
    answer: oneshot::Sender<Result<Vec<Row>, StoreError>>,
}

/// The webhooks waiting for the writer (`gather.rs`).
pub(crate) type Records = Gathered<Waiting>;

impl PgStore {
    /// Record `batch` (all of `lane`) with the webhooks written beside it; with `claim`, take
    /// the lane's turn. Returns `wagate_record_lane`'s rows for it, after the commit.
    pub(super) async fn record_together(
        &self,
        batch: &Batch,
        lane: &LaneKey,
        claim: bool,
    ) -> Result<Vec<Row>, StoreError> {
        let c = Columns::of(batch);
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let optional = |v: &[Option<&str>]| v.iter().map(|s| s.map(str::to_owned)).collect();
        let (answer, written) = oneshot::channel();
        let waiting = Waiting {
            lane: lane.clone(),
            claim,
            ids: owned(&c.ids),
            displays: owned(&c.displays),
            names: optional(&c.names),
            kinds: owned(&c.kinds),
            stamps: c.stamps,
            states: c.states,
            notes: optional(&c.notes),
            raws: owned(&c.raws),
            answer,
        };
        if self.inner.records.push(waiting) {
            tokio::spawn(self.clone().write_records());
        }
        written.await.unwrap_or_else(|_| {
            Err(StoreError::Postgres(
                "the writer of webhooks stopped before this one".to_owned(),
            ))
        })
    }

    /// The writer: writes what waits, and goes on while webhooks wait.
    async fn write_records(self) {
        loop {
            let mut batch = self.inner.records.next_batch(MAX_PER_STATEMENT);
            if batch.len() <= 1 {
                // One webhook: its own statement, without the loop around it.
                let Some(alone) = batch.pop() else { return };
                let result = self.record_alone(&alone).await;
                let _ = alone.answer.send(result);
                continue;
            }
            match self.record_lanes(&batch).await {
                Ok(rows) => hand_out(batch, rows),
                Err(e) => self.fail(batch, e).await,
            }
        }
    }

    /// The statement failed and nothing of it was committed: if it failed on the server, each
    /// webhook alone (one webhook's trouble is not the others'); if PostgreSQL cannot be
    /// reached, every caller's `503`.
    async fn fail(&self, batch: Vec<Waiting>, e: StoreError) {
        if let StoreError::Unreachable { target, reason } = &e {
            for waiting in batch {
                let _ = waiting.answer.send(Err(StoreError::Unreachable {
                    target: target.clone(),
                    reason: reason.clone(),
                }));
            }
            return;
        }
        tracing::debug!(error = %e, webhooks = batch.len(), "recording webhooks together failed; recording each alone");
        for waiting in batch {
            let result = self.record_alone(&waiting).await;
            let _ = waiting.answer.send(result);
        }
    }

    /// `wagate_record_lane` for one webhook.
    async fn record_alone(&self, w: &Waiting) -> Result<Vec<Row>, StoreError> {
        let now = crate::inbox::store::now_millis();
        let lease_ms = super::turns::lease_ms();
        let limit = MAX_MESSAGES_PER_TURN as i32;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT * FROM wagate_record_lane($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                                  $12, $13, $14, $15, $16, $17, $18)",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .query(
                &stmt,
                &[
                    &w.lane.phone_number_id,
                    &w.lane.user,
                    &w.ids,
                    &w.displays,
                    &w.names,
                    &w.kinds,
                    &w.stamps,
                    &w.states,
                    &w.notes,
                    &w.raws,
                    &now,
                    &HELD_FOR_PERSON,
                    &WHILE_OPTED_OUT,
                    &w.claim,
                    &self.inner.replica,
                    &lease_ms,
                    &limit,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.error(e))
    }

    /// `wagate_record_lanes` for `batch`: every webhook's rows.
    async fn record_lanes(&self, batch: &[Waiting]) -> Result<Vec<Row>, StoreError> {
        let pnids: Vec<&str> = batch
            .iter()
            .map(|w| w.lane.phone_number_id.as_str())
            .collect();
        let customers: Vec<&str> = batch.iter().map(|w| w.lane.user.as_str()).collect();
        let claims: Vec<bool> = batch.iter().map(|w| w.claim).collect();
        let ends: Vec<i32> = batch
            .iter()
            .scan(0, |end, w| {
                *end += w.ids.len() as i32;
                Some(*end)
            })
            .collect();
        let all = |column: fn(&Waiting) -> &[String]| -> Vec<&str> {
            batch
                .iter()
                .flat_map(|w| column(w).iter().map(String::as_str))
                .collect()
        };
        let ids = all(|w| &w.ids);
        let displays = all(|w| &w.displays);
        let kinds = all(|w| &w.kinds);
        let raws = all(|w| &w.raws);
        let names: Vec<Option<&str>> = batch
            .iter()
            .flat_map(|w| w.names.iter().map(Option::as_deref))
            .collect();
        let notes: Vec<Option<&str>> = batch
            .iter()
            .flat_map(|w| w.notes.iter().map(Option::as_deref))
            .collect();
        let stamps: Vec<i64> = batch
            .iter()
            .flat_map(|w| w.stamps.iter().copied())
            .collect();
        let states: Vec<&str> = batch
            .iter()
            .flat_map(|w| w.states.iter().copied())
            .collect();
        let now = crate::inbox::store::now_millis();
        let lease_ms = super::turns::lease_ms();
        let limit = MAX_MESSAGES_PER_TURN as i32;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT * FROM wagate_record_lanes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                                   $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .query(
                &stmt,
                &[
                    &pnids,
                    &customers,
                    &claims,
                    &ends,
                    &ids,
                    &displays,
                    &names,
                    &kinds,
                    &stamps,
                    &states,
                    &notes,
                    &raws,
                    &now,
                    &HELD_FOR_PERSON,
                    &WHILE_OPTED_OUT,
                    &self.inner.replica,
                    &lease_ms,
                    &limit,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.error(e))
    }
}

/// Each webhook its rows (committed).
fn hand_out(batch: Vec<Waiting>, rows: Vec<Row>) {
    let mut each: Vec<Vec<Row>> = batch.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let webhook: i32 = row.get(WEBHOOK_COLUMN);
        if let Some(rows) = each.get_mut((webhook as usize).wrapping_sub(1)) {
            rows.push(row);
        }
    }
    for (waiting, rows) in batch.into_iter().zip(each) {
        let _ = waiting.answer.send(Ok(rows));
    }
}
