//! A turn's last part, once Meta accepted it, is recorded `sent` by the statement that closes
//! the turn (`turns.rs`), which follows at once, instead of by a statement of its own: one
//! round trip and one commit less per message (BENCHMARKS.md, "After migration 0005").
//!
//! The wait risks nothing the exactly-once protocol does not already cover. Until the close
//! commits, the part is `sending` in the database, as it is between the Graph call's answer
//! and any mark: if this replica dies there, the next owner waits for the part's status
//! notification before sending it again, exactly as it would have had the replica died just
//! before a mark of its own. The window is the same length (the close is the next statement
//! of the turn; parts before the last are still marked at once, since the pause between parts
//! would widen it). The mark is written whoever owns the conversation by then (Meta has the
//! part), and a close that fails keeps it for the next try.

use super::PgStore;
use crate::inbox::store::StoreError;

/// A part Meta accepted, not yet written.
#[derive(Clone)]
pub(super) struct SentMark {
    pub(super) index: i32,
    pub(super) outbound_id: String,
    /// Unix milliseconds of Meta's answer.
    pub(super) at: i64,
}

/// The write of a [`SentMark`] of turn `$1` as a CTE (parameters `$first`..`$first + 2`: index,
/// Meta's id, time), for a statement whose other parts concern the same turn. Not fenced, as
/// [`PgStore::mark_part_sent`]'s own statement: Meta has the part whoever owns the conversation.
pub(super) fn write_sent_mark_cte(first: usize) -> String {
    format!(
        "sent AS (
             UPDATE reply_parts SET outbound_id = ${id}, sent_at = ${at}, sending_at = NULL,
                                    held_at = NULL
             WHERE turn_id = $1 AND idx = ${idx}::int AND outbound_id IS NULL)",
        idx = first,
        id = first + 1,
        at = first + 2
    )
}

impl PgStore {
    /// Meta accepted turn `key`'s last part: kept for the turn's close (outbox parts, which
    /// have no close, are written at once).
    pub(crate) async fn mark_last_part_sent(
        &self,
        key: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        if key <= 0 {
            return self.mark_part_sent(key, index, outbound_id).await;
        }
        let mark = SentMark {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            outbound_id,
            at: crate::inbox::store::now_millis(),
        };
        let earlier = self.sent_marks().insert(key, mark);
        match earlier {
            // Another part of the same turn still waiting (a close that failed, then a
            // resumed send): written now, so neither is lost.
            Some(earlier) if i64::from(earlier.index) != index as i64 => {
                self.write_sent_mark(key, earlier).await
            }
            _ => Ok(()),
        }
    }

    /// The mark waiting for turn `key`'s close, taken (the close writes it; put it back with
    /// [`keep_sent_mark`](Self::keep_sent_mark) when the close fails).
    pub(super) fn take_sent_mark(&self, key: i64) -> Option<SentMark> {
        self.sent_marks().remove(&key)
    }

    /// A taken mark whose statement failed: it waits for the next close again.
    pub(super) fn keep_sent_mark(&self, key: i64, mark: SentMark) {
        self.sent_marks().entry(key).or_insert(mark);
    }

    /// Meta's id of a part whose mark waits in this process.
    pub(super) fn waiting_outbound_id(&self, key: i64, index: usize) -> Option<String> {
        self.sent_marks()
            .get(&key)
            .filter(|m| i64::from(m.index) == index as i64)
            .map(|m| m.outbound_id.clone())
    }

    /// Write what waits for turn `key` now (a read of its parts from the table comes next).
    pub(super) async fn write_waiting_sent_mark(&self, key: i64) -> Result<(), StoreError> {
        match self.take_sent_mark(key) {
            Some(mark) => self.write_sent_mark(key, mark).await,
            None => Ok(()),
        }
    }

    async fn write_sent_mark(&self, key: i64, mark: SentMark) -> Result<(), StoreError> {
        let index = usize::try_from(mark.index).unwrap_or(usize::MAX);
        match self
            .mark_part_sent(key, index, mark.outbound_id.clone())
            .await
        {
            // Written (the statement records it whoever owns the conversation now).
            Ok(()) | Err(StoreError::LeaseLost { .. }) => Ok(()),
            Err(e) => {
                self.keep_sent_mark(key, mark);
                Err(e)
            }
        }
    }

    fn sent_marks(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, SentMark>> {
        self.inner
            .sent_marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
