//! The outbox: messages to a customer that are not a turn's reply (an operator's replies, the
//! handoff notice), saved with their parts before sending, each part marked once Meta accepted
//! it, like a turn's reply.

use super::ops::now_millis;
use super::{ReplyPart, Store, StoreError};
use crate::inbox::LaneKey;
use rusqlite::{params, Connection};

/// A message of the outbox still to send.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub lane: LaneKey,
    pub author: String,
    pub text: String,
    pub parts: Vec<ReplyPart>,
    /// Unix ms when it was queued.
    pub created_at: i64,
    /// Unix ms of the conversation's previous operator reply, if any.
    pub previous_reply_at: Option<i64>,
}

/// Queue a message (its parts already formatted and split); returns its id.
pub(super) fn queue(
    conn: &Connection,
    lane: &LaneKey,
    author: &str,
    text: &str,
    parts: &[String],
) -> rusqlite::Result<i64> {
    let text = if text.is_empty() {
        parts.join("\n")
    } else {
        text.to_string()
    };
    conn.prepare_cached(
        "INSERT INTO outbox (phone_number_id, user, author, text, created_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
    )?
    .execute(params![
        lane.phone_number_id,
        lane.user,
        author,
        text,
        now_millis()
    ])?;
    let id = conn.last_insert_rowid();
    let mut insert =
        conn.prepare_cached("INSERT INTO outbox_parts (outbox_id, idx, text) VALUES (?1, ?2, ?3)")?;
    for (idx, part) in parts.iter().enumerate() {
        insert.execute(params![id, idx as i64, part])?;
    }
    Ok(id)
}

fn pending_outbox(conn: &Connection) -> rusqlite::Result<Vec<OutboxItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, phone_number_id, user, author, text, created_at,
                (SELECT MAX(created_at) FROM outbox p WHERE p.phone_number_id = o.phone_number_id
                   AND p.user = o.user AND p.author = 'operator' AND p.id < o.id)
         FROM outbox o WHERE state = 'pending' ORDER BY id LIMIT 100",
    )?;
    let mut items = stmt
        .query_map([], |r| {
            Ok(OutboxItem {
                id: r.get(0)?,
                lane: LaneKey {
                    phone_number_id: r.get(1)?,
                    user: r.get(2)?,
                },
                author: r.get(3)?,
                text: r.get(4)?,
                parts: Vec::new(),
                created_at: r.get(5)?,
                previous_reply_at: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut parts = conn.prepare_cached(
        "SELECT idx, text, outbound_id FROM outbox_parts WHERE outbox_id = ?1 ORDER BY idx",
    )?;
    for item in &mut items {
        item.parts = parts
            .query_map(params![item.id], |r| {
                Ok(ReplyPart {
                    index: r.get::<_, i64>(0)? as usize,
                    text: r.get(1)?,
                    outbound_id: r.get(2)?,
                    sending_since: None,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(items)
}

impl Store {
    /// Queue an operator's reply (formatted `parts`) and note the reply on the conversation,
    /// which restarts its `release_after_seconds`. Returns the message id.
    pub async fn queue_operator_reply(
        &self,
        lane: LaneKey,
        text: String,
        parts: Vec<String>,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            let id = queue(c, &lane, "operator", &text, &parts)?;
            c.prepare_cached(
                "UPDATE conversations SET last_operator_at = ?3
                 WHERE phone_number_id = ?1 AND user = ?2",
            )?
            .execute(params![lane.phone_number_id, lane.user, now_millis()])?;
            Ok(id)
        })
        .await
    }

    /// Outbox messages not yet fully sent, oldest first (at most 100).
    pub async fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.call(pending_outbox).await
    }

    /// Meta accepted this part: committed before the next part goes out.
    pub async fn mark_outbox_part_sent(
        &self,
        id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE outbox_parts SET outbound_id = ?3, sent_at = ?4
                 WHERE outbox_id = ?1 AND idx = ?2",
            )?
            .execute(params![id, index as i64, outbound_id, now_millis()])?;
            Ok(())
        })
        .await
    }

    /// Close an outbox message: `error` None when every part went out.
    pub async fn finish_outbox(
        &self,
        id: i64,
        failed_part: Option<usize>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let state = if error.is_some() { "failed" } else { "sent" };
            c.prepare_cached("UPDATE outbox SET state = ?2, error = ?3 WHERE id = ?1")?
                .execute(params![id, state, error])?;
            if let (Some(index), Some(error)) = (failed_part, &error) {
                c.prepare_cached(
                    "UPDATE outbox_parts SET error = ?3 WHERE outbox_id = ?1 AND idx = ?2",
                )?
                .execute(params![id, index as i64, error])?;
            }
            Ok(())
        })
        .await
    }
}
