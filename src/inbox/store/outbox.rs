//! The outbox: messages to a customer that are not a turn's reply (an operator's replies, the
//! handoff notice, the window's reopen template), saved with their parts before sending. The
//! parts are reply parts keyed by the negated outbox id (`parts::outbox_key`), sent through the
//! same exactly-once path as a turn's reply.

use super::now_millis;
use super::parts::{self, outbox_key};
use super::{ReplyPart, Sqlite, StoreError};
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use rusqlite::{params, Connection, OptionalExtension};

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
    let messages: Vec<OutgoingMessage> = parts.iter().map(OutgoingMessage::text).collect();
    parts::save_messages(conn, outbox_key(id), &messages)?;
    Ok(id)
}

/// Queue `template` for `lane` unless one was already queued to reopen the window closed
/// since the customer message at `reopens` (unix ms): one template per silence, however many
/// messages are held behind it. Returns its id when queued now.
pub(super) fn queue_reopen_template(
    conn: &Connection,
    lane: &LaneKey,
    template: &OutgoingMessage,
    reopens: i64,
) -> rusqlite::Result<Option<i64>> {
    let queued: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM outbox WHERE phone_number_id = ?1 AND user = ?2 AND reopens = ?3",
        )?
        .query_row(params![lane.phone_number_id, lane.user, reopens], |r| {
            r.get(0)
        })
        .optional()?;
    if queued.is_some() {
        return Ok(None);
    }
    conn.prepare_cached(
        "INSERT INTO outbox (phone_number_id, user, author, text, created_at, state, reopens)
         VALUES (?1, ?2, 'agent', ?3, ?4, 'pending', ?5)",
    )?
    .execute(params![
        lane.phone_number_id,
        lane.user,
        template.describe(),
        now_millis(),
        reopens
    ])?;
    let id = conn.last_insert_rowid();
    parts::save_messages(conn, outbox_key(id), std::slice::from_ref(template))?;
    Ok(Some(id))
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
    for item in &mut items {
        item.parts = parts::load_reply(conn, outbox_key(item.id))?.unwrap_or_default();
    }
    Ok(items)
}

impl Sqlite {
    /// Queue an operator's reply (formatted `parts`) and note the reply on the conversation,
    /// which restarts its `release_after_seconds`. Returns the message id; `None` (nothing
    /// queued) when the customer has opted out.
    pub(super) async fn queue_operator_reply(
        &self,
        lane: LaneKey,
        text: String,
        parts: Vec<String>,
    ) -> Result<Option<i64>, StoreError> {
        self.call(move |c| {
            // In the same commit as the queueing: a STOP recorded a moment ago wins.
            if super::opt_out::is_opted_out(c, &lane)? {
                return Ok(None);
            }
            let id = queue(c, &lane, "operator", &text, &parts)?;
            c.prepare_cached(
                "UPDATE conversations SET last_operator_at = ?3
                 WHERE phone_number_id = ?1 AND user = ?2",
            )?
            .execute(params![lane.phone_number_id, lane.user, now_millis()])?;
            Ok(Some(id))
        })
        .await
    }

    /// Outbox messages not yet fully sent, oldest first (at most 100).
    pub(super) async fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.call(pending_outbox).await
    }

    /// Hold the parts of `key` (a turn, or [`outbox_key`] of a message) from `from` on for the
    /// 24-hour window and, in the same commit, queue `template` (when given) to reopen it,
    /// once per customer message `reopens` (unix ms). Returns the template's outbox id when it
    /// was queued now.
    pub(super) async fn hold_for_window(
        &self,
        lane: LaneKey,
        key: i64,
        from: usize,
        template: Option<OutgoingMessage>,
        reopens: i64,
    ) -> Result<Option<i64>, StoreError> {
        // Before the commit: a turn that runs after it must look for held parts.
        self.held_parts
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.call(move |c| {
            parts::hold_parts(c, key, from)?;
            match &template {
                Some(template) => queue_reopen_template(c, &lane, template, reopens),
                None => Ok(None),
            }
        })
        .await
    }

    /// Close an outbox message: `error` None when every part went out.
    pub(super) async fn finish_outbox(
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
                parts::mark_part_failed(c, outbox_key(id), index, error)?;
            }
            Ok(())
        })
        .await
    }
}
