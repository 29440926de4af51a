//! Turns on PostgreSQL: claiming a conversation's messages under its lease (`lease.rs`),
//! closing a turn (fenced), finding conversations with work.

use super::lease::{self, Claim, Held};
use super::PgStore;
use crate::inbox::store::turns::{ClaimedTurn, MAX_MESSAGES_PER_TURN};
use crate::inbox::store::{MessageState, StoreError, TurnOutcome, TurnState};
use crate::inbox::{InboundRecord, LaneKey, Turn};
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

/// Columns of a message as a turn reads it.
const MESSAGE_COLUMNS: &str = "i.seq, i.message_id, i.phone_number_id, i.display_phone_number,
    i.customer, i.contact_name, i.kind, i.meta_timestamp, r.raw";

fn message(row: &Row) -> (InboundRecord, String) {
    let record = InboundRecord {
        seq: row.get(0),
        message_id: row.get(1),
        phone_number_id: row.get(2),
        display_phone_number: row.get(3),
        user: row.get(4),
        contact_name: row.get(5),
        kind: row.get(6),
        timestamp: row.get(7),
        raw: serde_json::Value::Null, // parsed by `ClaimedTurn::into_turn`
    };
    (record, row.get(8))
}

/// A turn claimed in a transaction, with the lease it holds (registered after the commit).
pub(super) struct Claimed {
    pub(super) turn: ClaimedTurn,
    pub(super) held: Held,
}

/// The lane's next turn, in `tx`: its lease first (`None` when another replica has it), then
/// its interrupted turn (a crash's, ours or another replica's), else its oldest pending
/// messages as a new turn. `None` when there is nothing to do, and (without `resume`, as at
/// intake) when an interrupted turn waits: the lane's own claim resumes it first.
pub(super) async fn claim(
    tx: &Transaction<'_>,
    replica: &str,
    lane: &LaneKey,
    resume: bool,
) -> Result<Option<Claimed>, tokio_postgres::Error> {
    let taken_over = match lease::lock_for_claim(tx, replica, lane).await? {
        Claim::Busy => return Ok(None),
        Claim::Free { taken_over } => taken_over,
    };
    let interrupted = tx
        .prepare_cached(
            "SELECT id, attempts FROM turns
             WHERE phone_number_id = $1 AND customer = $2 AND state = 'running'
             ORDER BY id LIMIT 1",
        )
        .await?;
    if let Some(row) = tx
        .query_opt(&interrupted, &[&lane.phone_number_id, &lane.user])
        .await?
    {
        let (id, attempts): (i64, i32) = (row.get(0), row.get(1));
        if !resume {
            return Ok(None);
        }
        let bump = tx
            .prepare_cached("UPDATE turns SET attempts = attempts + 1 WHERE id = $1")
            .await?;
        tx.execute(&bump, &[&id]).await?;
        let select = tx
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
                 WHERE i.turn_id = $1 AND i.state = 'taken' ORDER BY i.seq"
            ))
            .await?;
        let messages: Vec<_> = tx
            .query(&select, &[&id])
            .await?
            .iter()
            .map(message)
            .collect();
        if !messages.is_empty() {
            let fence = lease::take(tx, replica, lane).await?;
            return Ok(Some(Claimed {
                turn: ClaimedTurn {
                    id,
                    lane: lane.clone(),
                    messages,
                    attempt: attempts.max(0) as u32,
                },
                held: Held {
                    fence,
                    turn_id: id,
                    taken_over_at: taken_over.then(crate::inbox::store::now_millis),
                },
            }));
        }
        // A running turn without messages cannot be answered: close it, look for new work.
        close(tx, id, &TurnOutcome::Failed("turn had no messages".into())).await?;
    }
    claim_pending(tx, replica, lane, taken_over).await
}

/// The lane's oldest pending messages as a new turn, for a lane whose lease `tx` holds (or
/// may take) and which has no interrupted turn.
pub(super) async fn claim_pending(
    tx: &Transaction<'_>,
    replica: &str,
    lane: &LaneKey,
    taken_over: bool,
) -> Result<Option<Claimed>, tokio_postgres::Error> {
    let select = tx
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
             WHERE i.phone_number_id = $1 AND i.customer = $2 AND i.state = 'pending'
             ORDER BY i.seq LIMIT $3"
        ))
        .await?;
    let limit = MAX_MESSAGES_PER_TURN as i64;
    let messages: Vec<_> = tx
        .query(&select, &[&lane.phone_number_id, &lane.user, &limit])
        .await?
        .iter()
        .map(message)
        .collect();
    if messages.is_empty() {
        return Ok(None);
    }
    let fence = lease::take(tx, replica, lane).await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO turns (phone_number_id, customer, state, attempts, started_at)
             VALUES ($1, $2, 'running', 1, $3) RETURNING id",
        )
        .await?;
    let started = crate::inbox::store::now_millis();
    let id: i64 = tx
        .query_one(&insert, &[&lane.phone_number_id, &lane.user, &started])
        .await?
        .get(0);
    let seqs: Vec<i64> = messages.iter().map(|(m, _)| m.seq).collect();
    let take = tx
        .prepare_cached(
            "UPDATE inbound SET state = 'taken', turn_id = $1 WHERE seq = ANY($2) AND state = 'pending'",
        )
        .await?;
    tx.execute(&take, &[&id, &seqs]).await?;
    Ok(Some(Claimed {
        turn: ClaimedTurn {
            id,
            lane: lane.clone(),
            messages,
            attempt: 0,
        },
        held: Held {
            fence,
            turn_id: id,
            taken_over_at: taken_over.then(crate::inbox::store::now_millis),
        },
    }))
}

/// Close a turn in `tx` (the caller checked its fence). `RetryLater` leaves it running.
async fn close(
    tx: &Transaction<'_>,
    turn_id: i64,
    outcome: &TurnOutcome,
) -> Result<(), tokio_postgres::Error> {
    let (turn_state, message_state, error) = match outcome {
        TurnOutcome::Done => (TurnState::Done, MessageState::Done, None),
        TurnOutcome::Failed(reason) => (
            TurnState::Failed,
            MessageState::Failed,
            Some(reason.as_str()),
        ),
        TurnOutcome::RetryLater { reason, .. } => {
            let stmt = tx
                .prepare_cached("UPDATE turns SET error = $2 WHERE id = $1")
                .await?;
            tx.execute(&stmt, &[&turn_id, reason]).await?;
            return Ok(());
        }
    };
    let turn = tx
        .prepare_cached("UPDATE turns SET state = $2, finished_at = $3, error = $4 WHERE id = $1")
        .await?;
    let now = crate::inbox::store::now_millis();
    tx.execute(&turn, &[&turn_id, &turn_state.as_str(), &now, &error])
        .await?;
    let messages = tx
        .prepare_cached(
            "UPDATE inbound SET state = $2, note = $3 WHERE turn_id = $1 AND state = 'taken'",
        )
        .await?;
    tx.execute(&messages, &[&turn_id, &message_state.as_str(), &error])
        .await?;
    Ok(())
}

/// The lane of `turn_id` if this replica still holds it with one of its fences, locking the
/// lease row for the transaction.
async fn fenced_lane(
    tx: &Transaction<'_>,
    replica: &str,
    fences: &[i64],
    turn_id: i64,
) -> Result<Option<(LaneKey, i64)>, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "SELECT l.phone_number_id, l.customer, l.fence FROM leases l JOIN turns t
                 ON t.phone_number_id = l.phone_number_id AND t.customer = l.customer
             WHERE t.id = $1 AND l.owner = $2 AND l.fence = ANY($3) FOR UPDATE OF l",
        )
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&turn_id, &replica, &fences])
        .await?
        .map(|r| {
            (
                LaneKey {
                    phone_number_id: r.get(0),
                    user: r.get(1),
                },
                r.get(2),
            )
        }))
}

impl PgStore {
    /// Run `claim` in a transaction of its own and register the lease it took.
    async fn claim_in_transaction(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let claimed = claim(&tx, &self.inner.replica, &lane, true)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
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
        let replica = &self.inner.replica;
        let fences = self.inner.leases.fences();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let Some((lane, fence)) = fenced_lane(&tx, replica, &fences, turn_id)
            .await
            .map_err(|e| self.error(e))?
        else {
            drop(tx);
            if let Some((lane, _)) = self.inner.leases.by_turn(turn_id) {
                self.inner.leases.remove(&lane);
            }
            return Err(StoreError::LeaseLost { turn_id });
        };
        close(&tx, turn_id, &outcome)
            .await
            .map_err(|e| self.error(e))?;
        if matches!(outcome, TurnOutcome::RetryLater { .. }) {
            // The turn stays this lane's, under the same lease (kept alive by the heartbeat).
            tx.commit().await.map_err(|e| self.error(e))?;
            return Ok(None);
        }
        let next = if claim_next {
            claim_pending(&tx, replica, &lane, false)
                .await
                .map_err(|e| self.error(e))?
        } else {
            None
        };
        if next.is_none() {
            lease::release(&tx, &lane)
                .await
                .map_err(|e| self.error(e))?;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        match next {
            Some(claimed) => Ok(Some(self.register(lane, claimed))),
            None => {
                self.inner.leases.remove_fence(fence);
                Ok(None)
            }
        }
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
        lease::release_all(&self.inner).await
    }
}

fn lane(row: &Row) -> LaneKey {
    LaneKey {
        phone_number_id: row.get(0),
        user: row.get(1),
    }
}
