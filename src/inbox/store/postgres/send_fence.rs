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

/// The turn's mark: lease, conversation gate, write, in one statement. `$1` key, `$2` this
/// replica, `$3` its fences, `$4` the part, `$5` now.
fn turn_mark_sql() -> String {
    format!(
        "WITH lease AS ({}),
         gate AS (
             SELECT c.state = 'human' AND COALESCE(c.trigger, '') <> 'tool' AS with_person,
                    c.opted_out
             FROM turns t JOIN conversations c
                 ON c.phone_number_id = t.phone_number_id AND c.customer = t.customer
             WHERE t.id = $1 FOR SHARE OF c),
         done AS (
             UPDATE reply_parts SET sending_at = $5
             WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL
               AND EXISTS (SELECT 1 FROM lease)
               AND NOT EXISTS (SELECT 1 FROM gate WHERE with_person OR opted_out)
             RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM lease),
                COALESCE((SELECT with_person FROM gate), FALSE),
                COALESCE((SELECT opted_out FROM gate), FALSE),
                (SELECT COUNT(*) FROM done)",
        lease::turn_fenced("$2", "$3")
    )
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
            (row.get(0), row.get(1), row.get(2));
        if !held {
            // Another replica took the conversation over: as every fenced write answers.
            if let Some((lane, _)) = self.inner.leases.by_turn(key) {
                self.inner.leases.remove(&lane);
            }
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        Ok(if opted_out {
            Some(SendRefusal::OptedOut)
        } else if with_person {
            Some(SendRefusal::WithPerson)
        } else {
            None
        })
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
