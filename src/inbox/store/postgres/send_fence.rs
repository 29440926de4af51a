//! The send fence on PostgreSQL: a part is marked `sending` (the last write before its Graph
//! call) only when, in that same statement, nothing forbids it any more (see
//! [`SendRefusal`]). With several replicas this is what makes a take-over, a STOP or an outbox
//! claim committed on one replica stop the sends of every other one at once, whatever their
//! in-memory mirrors still say (they catch up by a NOTIFY, or the 2 s poll).
//!
//! - A turn's part (key > 0): fenced by the conversation's lease as every write of a turn
//!   (`lease.rs`), and refused when the conversation is with a person (not by the turn's own
//!   `handoff_to_human`, whose notice is that turn's reply) or opted out. The conversation's
//!   row is read `FOR SHARE`, so a take-over or an opt-out committing at the same moment is
//!   ordered before the mark (and refuses it) or after it (the part was already going out).
//! - An outbox part (key < 0: operator replies, notices, templates): sent while a person has
//!   the conversation (that is their point), but only while the message is still pending (an
//!   opt-out cancels it) and claimed by this replica with its claim not run out; the mark
//!   renews the claim, so a long send keeps it.

use super::super::{SendRefusal, StoreError};
use super::lease;
use super::outbox::CLAIM;
use super::PgStore;
use tokio_postgres::types::ToSql;

/// What may refuse a turn's (`$1`) part: whether a person has its conversation (not by the
/// turn's own `handoff_to_human`) and whether the customer opted out, the conversation's row
/// read `FOR SHARE`. No row: neither.
const TURN_GATE: &str =
    "SELECT c.state = 'human' AND COALESCE(c.trigger, '') <> 'tool' AS with_person, c.opted_out
     FROM turns t JOIN conversations c
         ON c.phone_number_id = t.phone_number_id AND c.customer = t.customer
     WHERE t.id = $1 FOR SHARE OF c";

/// The answer's columns after (lease held, rows written): with a person, opted out.
const GATE_ANSWER: &str = "COALESCE((SELECT with_person FROM gate), FALSE),
                COALESCE((SELECT opted_out FROM gate), FALSE)";

/// The turn's mark: lease, conversation gate, write, in one statement. `$1` key, `$2` this
/// replica, `$3` its fences, `$4` the part, `$5` now.
fn turn_mark_sql() -> String {
    format!(
        "WITH lease AS ({}),
         gate AS ({TURN_GATE}),
         done AS (
             UPDATE reply_parts SET sending_at = $5
             WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL
               AND EXISTS (SELECT 1 FROM lease)
               AND NOT EXISTS (SELECT 1 FROM gate WHERE with_person OR opted_out)
             RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM lease), (SELECT COUNT(*) FROM done), {GATE_ANSWER}",
        lease::turn_fenced("$2", "$3")
    )
}

/// A turn's new reply saved with its first part marked `sending` unless the gate refuses it:
/// `$1`–`$3` as in [`turn_mark_sql`], `also` CTEs (ending in a comma) written under the same
/// lease, `$first`..`$first + 2` the parts' indexes, texts and JSON, `$first + 3` now.
fn save_marking_first_sql(also: &str, first: usize) -> String {
    format!(
        "WITH lease AS ({lease}), {also}
         gate AS ({TURN_GATE}),
         done AS (
             INSERT INTO reply_parts (turn_id, idx, text, message, sending_at)
             SELECT $1, p.idx, p.text, p.message,
                    CASE WHEN p.idx = 0
                          AND NOT EXISTS (SELECT 1 FROM gate WHERE with_person OR opted_out)
                         THEN ${now}::bigint END
             FROM unnest(${idx}::int[], ${text}::text[], ${json}::text[]) AS p(idx, text, message)
             WHERE EXISTS (SELECT 1 FROM lease)
             ON CONFLICT (turn_id, idx) DO NOTHING
             RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM lease), (SELECT COUNT(*) FROM done), {GATE_ANSWER}",
        lease = lease::turn_fenced("$2", "$3"),
        idx = first,
        text = first + 1,
        json = first + 2,
        now = first + 3,
    )
}

/// What a gate's answer refuses, if anything.
fn refusal(with_person: bool, opted_out: bool) -> Option<SendRefusal> {
    if opted_out {
        Some(SendRefusal::OptedOut)
    } else if with_person {
        Some(SendRefusal::WithPerson)
    } else {
        None
    }
}

/// The outbox part's mark: claim check and renewal, write, in one statement. `$1` key, `$2`
/// this replica, `$3` the part, `$4` now, `$5` the renewed claim's end.
const OUTBOX_MARK_SQL: &str = "WITH claim AS (
         UPDATE outbox SET claimed_until = $5
         WHERE id = -($1::bigint) AND state = 'pending' AND claimed_by = $2 AND claimed_until >= $4
         RETURNING 1),
     done AS (
         UPDATE reply_parts SET sending_at = $4
         WHERE turn_id = $1 AND idx = $3 AND outbound_id IS NULL
           AND EXISTS (SELECT 1 FROM claim)
         RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM claim),
            COALESCE((SELECT state = 'pending' FROM outbox WHERE id = -($1::bigint)), FALSE),
            (SELECT COUNT(*) FROM done)";

impl PgStore {
    pub(crate) async fn mark_part_sending(
        &self,
        key: i64,
        index: usize,
    ) -> Result<i64, StoreError> {
        let now = crate::inbox::store::now_millis();
        let idx = i32::try_from(index).unwrap_or(i32::MAX);
        let refusal = if key > 0 {
            self.mark_turn_part(key, idx, now).await?
        } else {
            self.mark_outbox_part(key, idx, now).await?
        };
        match refusal {
            None => Ok(now),
            Some(refusal) => Err(StoreError::SendRefused { key, refusal }),
        }
    }

    async fn mark_turn_part(
        &self,
        key: i64,
        idx: i32,
        now: i64,
    ) -> Result<Option<SendRefusal>, StoreError> {
        let fences = self.inner.leases.fences();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&turn_mark_sql())
            .await
            .map_err(|e| self.error(e))?;
        let row = client
            .query_one(&stmt, &[&key, &self.inner.replica, &fences, &idx, &now])
            .await
            .map_err(|e| self.error(e))?;
        let (held, with_person, opted_out): (bool, bool, bool) =
            (row.get(0), row.get(2), row.get(3));
        if !held {
            // Another replica took the conversation over: as every fenced write answers.
            if let Some((lane, _)) = self.inner.leases.by_turn(key) {
                self.inner.leases.remove(&lane);
            }
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        Ok(refusal(with_person, opted_out))
    }

    /// Run [`save_marking_first_sql`] (flushed, as every mark): (lease held, parts written,
    /// what refused the first part).
    pub(super) async fn save_marking_first(
        &self,
        key: i64,
        also: &str,
        first: usize,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(bool, u64, Option<SendRefusal>), StoreError> {
        let sql = save_marking_first_sql(also, first);
        let row = self.fenced_row(key, &sql, params).await?;
        let written = row.get::<_, i64>(1).max(0) as u64;
        Ok((row.get(0), written, refusal(row.get(2), row.get(3))))
    }

    async fn mark_outbox_part(
        &self,
        key: i64,
        idx: i32,
        now: i64,
    ) -> Result<Option<SendRefusal>, StoreError> {
        let until = now.saturating_add(i64::try_from(CLAIM.as_millis()).unwrap_or(i64::MAX));
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(OUTBOX_MARK_SQL)
            .await
            .map_err(|e| self.error(e))?;
        let row = client
            .query_one(&stmt, &[&key, &self.inner.replica, &idx, &now, &until])
            .await
            .map_err(|e| self.error(e))?;
        let (claimed, pending): (bool, bool) = (row.get(0), row.get(1));
        Ok(if claimed {
            None
        } else if pending {
            Some(SendRefusal::OutboxClaimLost)
        } else {
            Some(SendRefusal::OutboxClosed)
        })
    }
}
