//! Reply parts on PostgreSQL (see `store/parts.rs` for the exactly-once protocol): saved
//! before sending, marked `sending` before each Graph call and `sent` after. Every write for a
//! turn (key > 0) is fenced by the turn's conversation lease (`lease.rs`) in the same
//! statement; outbox parts (key < 0) are not leased per conversation. The mark `sending`
//! itself, with everything else that may refuse it, is `send_fence.rs`.

use super::lease;
use super::memory::INSERT_MEMORY;
use super::PgStore;
use crate::inbox::store::{FirstPart, ReplyPart, StoreError};
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use tokio_postgres::types::ToSql;

/// When a write's commit reaches the disk. A commit the outside world is told of (a webhook's
/// `200`, a part marked `sending` before its Graph call, an operator's action) waits for its
/// WAL flush; a turn's bookkeeping in between (its memory, its saved reply, a part's `sent`,
/// its close) does not: PostgreSQL flushes the WAL in order, so the next flushed commit (at
/// the latest the next part's `sending` mark, before anything more goes to Meta) makes it
/// durable too. What a PostgreSQL crash can take back is only such bookkeeping after the last
/// flushed commit, which the exactly-once protocol redoes or settles: a reply not yet
/// `sending` is generated again, a part left `sending` waits for its status, an unclosed turn
/// is resumed. A replica's own crash loses nothing: the server still has the commit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// The commit returns once its WAL is on disk.
    Now,
    /// The commit returns at once; the next flushed commit (or PostgreSQL's WAL writer, within
    /// a fraction of a second) writes it.
    WithNextFlushedCommit,
}

/// `statement` (which says `EXISTS (SELECT 1 FROM lease)` where it must be fenced) under the
/// lease check of key `$1`'s conversation, `$2` the replica, `$3` its fences. Answers (lease
/// held, rows written).
pub(super) fn fenced_sql(key: i64, statement: &str) -> String {
    fenced_sql_with(key, statement, Flush::Now)
}

fn fenced_sql_with(key: i64, statement: &str, flush: Flush) -> String {
    fenced_sql_after(key, "", statement, flush)
}

/// As [`fenced_sql_with`], with `also` (CTEs ending in a comma, under the same lease) written
/// in the same statement before `statement`.
fn fenced_sql_after(key: i64, also: &str, statement: &str, flush: Flush) -> String {
    let lease = if key > 0 {
        lease::turn_fenced("$2", "$3")
    } else {
        // Outbox parts: no conversation lease; the parameters are still typed.
        "SELECT 1 WHERE $1::bigint IS NOT NULL AND $2::text IS NOT NULL AND $3::bigint[] IS NOT NULL"
            .to_owned()
    };
    let deferred = match flush {
        Flush::Now => "",
        Flush::WithNextFlushedCommit => ", set_config('synchronous_commit', 'off', true)",
    };
    format!(
        "WITH lease AS ({lease}), {also} done AS ({statement} RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM lease), (SELECT COUNT(*) FROM done){deferred}"
    )
}

/// A reply's parts as the insert takes them: indexes, texts, and the message as JSON when it
/// is not plain text.
pub(super) struct ReplyRows {
    pub(super) idx: Vec<i32>,
    pub(super) texts: Vec<String>,
    pub(super) json: Vec<Option<String>>,
}

impl ReplyRows {
    pub(super) fn of(messages: &[OutgoingMessage]) -> ReplyRows {
        let mut rows = ReplyRows {
            idx: Vec::with_capacity(messages.len()),
            texts: Vec::with_capacity(messages.len()),
            json: Vec::with_capacity(messages.len()),
        };
        for (i, message) in messages.iter().enumerate() {
            rows.idx.push(i32::try_from(i).unwrap_or(i32::MAX));
            match message {
                OutgoingMessage::Text { body } => {
                    rows.texts.push(body.clone());
                    rows.json.push(None);
                }
                other => {
                    rows.texts.push(other.describe());
                    rows.json
                        .push(Some(serde_json::to_string(other).unwrap_or_default()));
                }
            }
        }
        rows
    }
}

impl PgStore {
    /// Run a fenced statement; [`StoreError::LeaseLost`] when the conversation is no longer
    /// this replica's (nothing was written then). Returns the rows written.
    pub(crate) async fn fenced(
        &self,
        key: i64,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.fenced_with(key, statement, params, Flush::Now).await
    }

    /// As [`fenced`](Self::fenced), with the commit's [`Flush`].
    pub(super) async fn fenced_with(
        &self,
        key: i64,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
        flush: Flush,
    ) -> Result<u64, StoreError> {
        let (held, written) = self.fenced_report(key, statement, params, flush).await?;
        if !held {
            self.forget_turn(key);
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        Ok(written)
    }

    /// As [`fenced_with`](Self::fenced_with), reporting the lease instead of failing.
    async fn fenced_report(
        &self,
        key: i64,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
        flush: Flush,
    ) -> Result<(bool, u64), StoreError> {
        self.fenced_report_after(key, "", statement, params, flush)
            .await
    }

    /// As [`fenced_report`](Self::fenced_report), with the CTEs `also` first (see
    /// [`fenced_sql_after`]).
    async fn fenced_report_after(
        &self,
        key: i64,
        also: &str,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
        flush: Flush,
    ) -> Result<(bool, u64), StoreError> {
        let sql = fenced_sql_after(key, also, statement, flush);
        let row = self.fenced_row(key, &sql, params).await?;
        Ok((row.get(0), row.get::<_, i64>(1).max(0) as u64))
    }

    /// The one row of `sql`, whose `$1`–`$3` are the key, this replica and its fences (the
    /// lease check's parameters), then `params`.
    pub(super) async fn fenced_row(
        &self,
        key: i64,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, StoreError> {
        let fences = self.inner.leases.fences();
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&key, &self.inner.replica, &fences];
        all.extend_from_slice(params);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(e))?;
        client
            .query_one(&stmt, &all)
            .await
            .map_err(|e| self.error(e))
    }

    /// Whether this replica still holds the conversation of `turn_id` (with one of its fences).
    pub(crate) async fn holds_turn(&self, turn_id: i64) -> Result<bool, StoreError> {
        let fences = self.inner.leases.fences();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "WITH lease AS ({}) SELECT EXISTS (SELECT 1 FROM lease)",
                lease::turn_fenced("$2", "$3")
            ))
            .await
            .map_err(|e| self.error(e))?;
        let row = client
            .query_one(&stmt, &[&turn_id, &self.inner.replica, &fences])
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }

    /// The lease of `turn_id`'s conversation is gone: forget it.
    fn forget_turn(&self, turn_id: i64) {
        self.take_deferred_memory(turn_id);
        if let Some((lane, _)) = self.inner.leases.by_turn(turn_id) {
            self.inner.leases.remove(&lane);
        }
    }

    pub(crate) async fn save_reply_messages(
        &self,
        key: i64,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<ReplyPart>, StoreError> {
        // Not flushed on its own: the first part's `sending` mark flushes it before any send.
        self.save_reply(key, messages, false)
            .await
            .map(|(parts, _)| parts)
    }

    pub(crate) async fn save_reply_marking_first(
        &self,
        key: i64,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(Vec<ReplyPart>, FirstPart), StoreError> {
        self.save_reply(key, messages, true).await
    }

    /// Save the turn's reply (saving twice keeps the first version: a resumed turn sends what
    /// it saved), with the turn's memory entries waiting for it (`memory.rs`) in the same
    /// statement and, with `mark_first`, its first part marked `sending` under the send fence
    /// (`send_fence.rs`), flushed as every mark is.
    async fn save_reply(
        &self,
        key: i64,
        messages: Vec<OutgoingMessage>,
        mark_first: bool,
    ) -> Result<(Vec<ReplyPart>, FirstPart), StoreError> {
        let rows = ReplyRows::of(&messages);
        let memory = self.take_deferred_memory(key);
        let (also, first) = match &memory {
            Some(_) => (format!("mem AS ({INSERT_MEMORY}),"), 10),
            None => (String::new(), 4),
        };
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(memory) = &memory {
            params.extend(memory.params());
        }
        params.extend([&rows.idx as &(dyn ToSql + Sync), &rows.texts, &rows.json]);
        let now = crate::inbox::store::now_millis();
        let (held, written, refusal) = if mark_first {
            params.push(&now);
            self.save_marking_first(key, &also, first, &params).await?
        } else {
            let insert = format!(
                "INSERT INTO reply_parts (turn_id, idx, text, message)
                 SELECT $1, p.idx, p.text, p.message
                 FROM unnest(${}::int[], ${}::text[], ${}::text[]) AS p(idx, text, message)
                 WHERE EXISTS (SELECT 1 FROM lease)
                 ON CONFLICT (turn_id, idx) DO NOTHING",
                first,
                first + 1,
                first + 2
            );
            let (held, written) = self
                .fenced_report_after(key, &also, &insert, &params, Flush::WithNextFlushedCommit)
                .await?;
            (held, written, None)
        };
        if !held {
            self.forget_turn(key);
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        if written as usize != messages.len() {
            // Saved before: that version, unmarked.
            let parts = self.load_reply(key).await?.unwrap_or_default();
            return Ok((parts, FirstPart::Unmarked));
        }
        // All new: they read back exactly as given, not yet sent or held.
        let parts = messages
            .into_iter()
            .zip(rows.texts)
            .enumerate()
            .map(|(index, (message, text))| ReplyPart {
                index,
                text,
                message,
                held_since: None,
                outbound_id: None,
                sending_since: None,
            })
            .collect();
        let first = match (mark_first, refusal) {
            (false, _) => FirstPart::Unmarked,
            (true, Some(refusal)) => FirstPart::Refused(refusal),
            (true, None) => FirstPart::Marked { at: now },
        };
        Ok((parts, first))
    }

    pub(crate) async fn load_reply(&self, key: i64) -> Result<Option<Vec<ReplyPart>>, StoreError> {
        // A part accepted by Meta whose mark waits for the close is read as sent.
        self.write_waiting_sent_mark(key).await?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT idx, text, outbound_id, sending_at, message, held_at FROM reply_parts
                 WHERE turn_id = $1 ORDER BY idx",
            )
            .await
            .map_err(|e| self.error(e))?;
        let rows = client
            .query(&stmt, &[&key])
            .await
            .map_err(|e| self.error(e))?;
        let parts: Vec<ReplyPart> = rows
            .iter()
            .map(|r| {
                let text: String = r.get(1);
                let json: Option<String> = r.get(4);
                // A message this version cannot read (written by a newer one) goes out as text.
                let message = json
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_else(|| OutgoingMessage::text(text.clone()));
                ReplyPart {
                    index: r.get::<_, i32>(0).max(0) as usize,
                    text,
                    message,
                    outbound_id: r.get(2),
                    sending_since: r.get(3),
                    held_since: r.get(5),
                }
            })
            .collect();
        Ok(if parts.is_empty() { None } else { Some(parts) })
    }

    pub(crate) async fn held_turns(&self, lane: LaneKey) -> Result<Vec<i64>, StoreError> {
        // Every turn asks; the claim that gave this replica the conversation already looked.
        if self.inner.leases.has_no_held_parts(&lane) {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT p.turn_id FROM reply_parts p JOIN turns t ON t.id = p.turn_id
                 WHERE p.held_at IS NOT NULL AND t.phone_number_id = $1 AND t.customer = $2
                 ORDER BY p.turn_id",
            )
            .await
            .map_err(|e| self.error(e))?;
        let rows = client
            .query(&stmt, &[&lane.phone_number_id, &lane.user])
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn clear_part_sending(
        &self,
        key: i64,
        index: usize,
    ) -> Result<(), StoreError> {
        let idx = index as i32;
        self.fenced(
            key,
            "UPDATE reply_parts SET sending_at = NULL
             WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL
               AND EXISTS (SELECT 1 FROM lease)",
            &[&idx],
        )
        .await
        .map(|_| ())
    }

    pub(crate) async fn part_outbound_id(
        &self,
        key: i64,
        index: usize,
    ) -> Result<Option<String>, StoreError> {
        if let Some(waiting) = self.waiting_outbound_id(key, index) {
            return Ok(Some(waiting));
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT outbound_id FROM reply_parts WHERE turn_id = $1 AND idx = $2")
            .await
            .map_err(|e| self.error(e))?;
        let idx = index as i32;
        let row = client
            .query_opt(&stmt, &[&key, &idx])
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Meta has the part: that fact is recorded even when the lease was lost meanwhile (it
    /// only keeps the part from going out twice), but a lost lease still answers
    /// [`StoreError::LeaseLost`] so the old owner sends nothing more.
    pub(crate) async fn mark_part_sent(
        &self,
        key: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        let now = crate::inbox::store::now_millis();
        let idx = index as i32;
        // Not flushed on its own: lost to a PostgreSQL crash, the part is `sending` and its
        // status notification settles it.
        let (held, _) = self
            .fenced_report(
                key,
                "UPDATE reply_parts SET outbound_id = $5, sent_at = $6, sending_at = NULL,
                     held_at = NULL
                 WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL",
                &[&idx, &outbound_id, &now],
                Flush::WithNextFlushedCommit,
            )
            .await?;
        if !held {
            self.forget_turn(key);
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        Ok(())
    }

    pub(crate) async fn mark_part_failed(
        &self,
        key: i64,
        index: usize,
        error: String,
    ) -> Result<(), StoreError> {
        let idx = index as i32;
        self.fenced(
            key,
            "UPDATE reply_parts SET error = $5, sending_at = NULL, held_at = NULL
             WHERE turn_id = $1 AND idx = $4 AND EXISTS (SELECT 1 FROM lease)",
            &[&idx, &error],
        )
        .await
        .map(|_| ())
    }
}
