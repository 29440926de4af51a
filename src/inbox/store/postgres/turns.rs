//! Turns on PostgreSQL: claiming a conversation's messages under its lease (`lease.rs`),
//! closing a turn (fenced), finding conversations with work.
//!
//! A claim and a close are each one call of a server-side function (`wagate_claim`,
//! `wagate_finish`, migration 0003): the steps are the ones `lease.rs` describes, under the
//! same locks, but one round trip instead of seven or ten, and no transaction left open
//! between them while the client is scheduled (BENCHMARKS.md, "Several replicas on
//! PostgreSQL", measures what it bought).

use super::lease::{Held, LEASE};
use super::sent_marks::{write_sent_mark_cte, SentMark};
use super::PgStore;
use crate::inbox::store::turns::{ClaimedTurn, MAX_MESSAGES_PER_TURN};
use crate::inbox::store::{StoreError, TurnOutcome};
use crate::inbox::{InboundRecord, LaneKey, Turn};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// A turn claimed in a transaction, with the lease it holds (registered after the commit).
pub(super) struct Claimed {
    pub(super) turn: ClaimedTurn,
    pub(super) held: Held,
}

/// The rows of a `wagate_claimed` result (from column `at` on) as a claimed turn; `None` for
/// no rows (nothing claimed).
pub(super) fn claimed(lane: &LaneKey, rows: &[Row], at: usize) -> Option<Claimed> {
    let first = rows.first()?;
    first.get::<_, Option<i64>>(at)?;
    let id: i64 = first.get(at);
    let attempt: i32 = first.get(at + 1);
    let taken_over: bool = first.get(at + 3);
    let messages = rows
        .iter()
        .map(|row| {
            let record = InboundRecord {
                seq: row.get(at + 5),
                message_id: row.get(at + 6),
                phone_number_id: row.get(at + 7),
                display_phone_number: row.get(at + 8),
                user: row.get(at + 9),
                contact_name: row.get(at + 10),
                kind: row.get(at + 11),
                timestamp: row.get(at + 12),
                raw: serde_json::Value::Null, // parsed by `ClaimedTurn::into_turn`
            };
            (record, row.get(at + 13))
        })
        .collect();
    Some(Claimed {
        turn: ClaimedTurn {
            id,
            lane: lane.clone(),
            messages,
            attempt: attempt.max(0) as u32,
        },
        held: Held {
            fence: first.get(at + 2),
            turn_id: id,
            taken_over_at: taken_over.then(crate::inbox::store::now_millis),
            has_held_parts: first.get(at + 4),
        },
    })
}

/// The lease's length as the functions take it.
pub(super) fn lease_ms() -> f64 {
    LEASE.as_millis() as f64
}

/// The lane's next turn, in the caller's transaction (or as a statement of its own): its
/// lease first (`None` when another replica has it), then its interrupted turn (a crash's,
/// ours or another replica's), else its oldest pending messages as a new turn. `None` when
/// there is nothing to do, and (without `resume`, as at intake) when an interrupted turn
/// waits: the lane's own claim resumes it first.
pub(super) async fn claim(
    client: &impl GenericClient,
    replica: &str,
    lane: &LaneKey,
    resume: bool,
) -> Result<Option<Claimed>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("SELECT * FROM wagate_claim($1, $2, $3, $4, $5, $6, $7)")
        .await?;
    let limit = MAX_MESSAGES_PER_TURN as i32;
    let now = crate::inbox::store::now_millis();
    let rows = client
        .query(
            &stmt,
            &[
                &lane.phone_number_id,
                &lane.user,
                &replica,
                &lease_ms(),
                &limit,
                &now,
                &resume,
            ],
        )
        .await?;
    Ok(claimed(lane, &rows, 0))
}

impl PgStore {
    /// Run `claim` (one statement: its own transaction) and register the lease it took.
    async fn claim_in_transaction(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let client = self.client().await?;
        let claimed = claim(&client, &self.inner.replica, &lane, true)
            .await
            .map_err(|e| self.error(e))?;
        Ok(claimed.map(|c| self.register(lane, c)))
    }

    /// After the commit: remember the lease, hand out the turn.
    pub(super) fn register(&self, lane: LaneKey, claimed: Claimed) -> Turn {
        self.inner.leases.insert(lane, claimed.held);
        claimed.turn.into_turn()
    }

    pub(crate) async fn claim_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        self.claim_in_transaction(lane).await
    }

    /// On PostgreSQL a lane this process found idle may still hold another replica's
    /// interrupted turn (that replica died): the claim always looks for one first.
    pub(crate) async fn claim_new_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        self.claim_in_transaction(lane).await
    }

    pub(crate) async fn finish_turn(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
    ) -> Result<(), StoreError> {
        self.finish(turn_id, outcome, false).await.map(|_| ())
    }

    pub(crate) async fn finish_and_claim(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
        _lane: LaneKey,
    ) -> Result<Option<Turn>, StoreError> {
        self.finish(turn_id, outcome, true).await
    }

    /// Close the turn under its fence and, with `claim_next`, take the lane's next pending
    /// messages in the same transaction (a new fence); with nothing next, give the lease up.
    async fn finish(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
        claim_next: bool,
    ) -> Result<Option<Turn>, StoreError> {
        // Memory entries still waiting for a saved reply (the turn ended without one) are
        // written before the close; lost with the lease, the close reports that below.
        match self.write_deferred_memory(turn_id).await {
            Ok(()) | Err(StoreError::LeaseLost { .. }) => {}
            Err(e) => return Err(e),
        }
        // An answered turn: closed together with the others ready now (`close_batch.rs`).
        if matches!(outcome, TurnOutcome::Done) {
            if let Some(closed) = self.close_answered(turn_id, claim_next).await {
                return closed;
            }
        }
        self.close_alone(turn_id, outcome, claim_next).await
    }

    /// [`finish`](Self::finish)'s close in a statement of its own (`wagate_finish`).
    pub(super) async fn close_alone(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
        claim_next: bool,
    ) -> Result<Option<Turn>, StoreError> {
        // The turn's last part, if Meta accepted it, is marked `sent` by this statement
        // (`sent_marks.rs`); a failed close keeps the mark for the next try.
        let sent = self.take_sent_mark(turn_id);
        let rows = self
            .close_statement(turn_id, &outcome, claim_next, sent.as_ref())
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                if let Some(sent) = sent {
                    self.keep_sent_mark(turn_id, sent);
                }
                return Err(e);
            }
        };
        let status: &str = rows.first().map_or("lost", |r| r.get(0));
        if status == "lost" {
            if let Some((lane, _)) = self.inner.leases.by_turn(turn_id) {
                self.inner.leases.remove(&lane);
            }
            return Err(StoreError::LeaseLost { turn_id });
        }
        let first = &rows[0];
        let lane = LaneKey {
            phone_number_id: first.get(1),
            user: first.get(2),
        };
        let closed_fence: i64 = first.get(3);
        match (status, claimed(&lane, &rows, 4)) {
            ("next", Some(next)) => Ok(Some(self.register(lane, next))),
            // The turn stays this lane's, under the same lease (kept alive by the heartbeat).
            ("kept", _) => Ok(None),
            _ => {
                self.inner.leases.remove_fence(closed_fence);
                Ok(None)
            }
        }
    }

    /// `wagate_finish` for the turn (with, when given, its last part's `sent` mark): its rows.
    async fn close_statement(
        &self,
        turn_id: i64,
        outcome: &TurnOutcome,
        claim_next: bool,
        sent: Option<&SentMark>,
    ) -> Result<Vec<Row>, StoreError> {
        let (turn_state, message_state, error) = outcome.states();
        let retry = matches!(outcome, TurnOutcome::RetryLater { .. });
        let (turn_state, message_state) = (turn_state.as_str(), message_state.as_str());
        let fences = self.inner.leases.fences();
        let limit = MAX_MESSAGES_PER_TURN as i32;
        let now = crate::inbox::store::now_millis();
        let lease_ms_value = lease_ms();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &turn_id,
            &self.inner.replica,
            &fences,
            &turn_state,
            &message_state,
            &error,
            &retry,
            &claim_next,
            &lease_ms_value,
            &limit,
            &now,
        ];
        let close = "SELECT * FROM wagate_finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        let sql = match sent {
            Some(mark) => {
                params.extend([
                    &mark.index as &(dyn ToSql + Sync),
                    &mark.outbound_id,
                    &mark.at,
                ]);
                format!("WITH {} {close}", write_sent_mark_cte(12))
            }
            None => close.to_owned(),
        };
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(|e| self.error(e))?;
        client
            .query(&stmt, &params)
            .await
            .map_err(|e| self.error(e))
    }

    /// Conversations with open messages that no other live replica holds, after `cursor` in
    /// key order.
    pub(crate) async fn open_lanes_after(
        &self,
        cursor: Option<LaneKey>,
        limit: usize,
    ) -> Result<Vec<LaneKey>, StoreError> {
        let (pnid, user) = cursor
            .as_ref()
            .map_or(("", ""), |c| (c.phone_number_id.as_str(), c.user.as_str()));
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT i.phone_number_id, i.customer FROM inbound i
                 WHERE i.state IN ('pending', 'taken') AND (i.phone_number_id, i.customer) > ($1, $2)
                   AND NOT EXISTS (SELECT 1 FROM leases l
                       WHERE l.phone_number_id = i.phone_number_id AND l.customer = i.customer
                         AND l.owner <> $3 AND l.expires_at > now())
                 ORDER BY 1, 2 LIMIT $4",
            )
            .await
            .map_err(|e| self.error(e))?;
        let limit = limit as i64;
        let rows = client
            .query(&stmt, &[&pnid, &user, &self.inner.replica, &limit])
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows.iter().map(lane).collect())
    }

    pub(crate) async fn open_lanes(&self) -> Result<Vec<LaneKey>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone_number_id, customer, MIN(seq) AS first FROM inbound
                 WHERE state IN ('pending', 'taken')
                 GROUP BY phone_number_id, customer ORDER BY first",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows.iter().map(lane).collect())
    }

    /// When this replica took over the conversation of `key` from another one.
    pub(crate) async fn confirm_window_start(&self, key: i64) -> Option<i64> {
        self.inner
            .leases
            .by_turn(key)
            .and_then(|(_, held)| held.taken_over_at)
    }

    pub(crate) async fn release_leases(&self) -> Result<(), StoreError> {
        super::lease::release_all(&self.inner).await
    }
}

fn lane(row: &Row) -> LaneKey {
    LaneKey {
        phone_number_id: row.get(0),
        user: row.get(1),
    }
}
