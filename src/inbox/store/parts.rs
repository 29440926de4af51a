//! Reply parts: saved before sending, marked `sending` before each Graph call and `sent` with
//! Meta's id after it, and confirmed from status notifications when a crash fell in between.
//!
//! Every send carries `biz_opaque_callback_data` naming its part ([`PartRef`]); Meta echoes it
//! in the part's status notifications. A part the store shows as `sending` when its turn resumes
//! was handed to Meta by a process that died before hearing the answer: its status notification
//! (matched by that callback data) says whether Meta has it, and only when none arrives within
//! [`CONFIRM_WINDOW`] of the restart is it sent again. Every function runs inside the writer's
//! transaction.
//!
//! The parts of outbox messages (operator replies, handoff notices, window templates) are
//! reply parts too, keyed by the negated outbox id ([`outbox_key`]; turn ids are positive), so
//! they go through the same marks and the same confirmation. A part is text or any other
//! message ([`OutgoingMessage`], saved as JSON in `message`), and may be held for the 24-hour
//! window (`held_at`) until the customer writes again.

use super::now_millis;
use super::ReplyPart;
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::Duration;

/// The key under which an outbox message's parts are saved (turn ids are positive).
pub fn outbox_key(outbox_id: i64) -> i64 {
    -outbox_id
}

/// How long a resumed turn waits for the status notification of a part a crash left `sending`
/// before it sends the part again (counted from the later of the restart and the mark). Meta
/// sends the `sent` status within seconds of accepting a message and redelivers a notification
/// it could not deliver (the server was down) with backoff; a minute covers both for a restart
/// that takes seconds.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(60);

/// Prefix of the callback data wagate puts on its sends; anything else is not ours.
const CALLBACK_PREFIX: &str = "wagate:";

/// The part a send is for, as carried in `biz_opaque_callback_data`:
/// `wagate:<database id>:<turn id>:<part index>`. The database id (random, made when the
/// database was created) keeps a status about a part of an earlier, deleted database from
/// confirming a part of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub database: String,
    pub turn_id: i64,
    pub index: usize,
}

impl PartRef {
    /// The callback data for the send (well under Meta's 512 characters).
    pub fn callback_data(&self) -> String {
        format!(
            "{CALLBACK_PREFIX}{}:{}:{}",
            self.database, self.turn_id, self.index
        )
    }

    /// Reads callback data written by [`PartRef::callback_data`]; `None` for anything else.
    pub fn parse(data: &str) -> Option<PartRef> {
        let mut fields = data.strip_prefix(CALLBACK_PREFIX)?.split(':');
        let database = fields.next().filter(|d| !d.is_empty())?.to_owned();
        let turn_id = fields.next()?.parse().ok()?;
        let index = fields.next()?.parse().ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(PartRef {
            database,
            turn_id,
            index,
        })
    }
}

/// This database's id, made once at creation (see [`PartRef`]).
pub(super) fn database_id(conn: &Connection) -> rusqlite::Result<String> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )?;
    let fresh = format!("{:016x}", rand::random::<u64>());
    conn.execute(
        "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('database_id', ?1)",
        params![fresh],
    )?;
    conn.query_row(
        "SELECT value FROM store_meta WHERE key = 'database_id'",
        [],
        |r| r.get(0),
    )
}

/// Remember the reply before sending it, so a resumed turn sends the same messages and skips
/// the parts Meta already accepted. Saving twice keeps the first version.
pub(super) fn save_messages(
    conn: &Connection,
    key: i64,
    messages: &[OutgoingMessage],
) -> rusqlite::Result<Vec<ReplyPart>> {
    insert_messages(conn, key, messages)?;
    load_reply(conn, key).map(|r| r.unwrap_or_default())
}

/// Insert the parts not saved yet; how many were new.
fn insert_messages(
    conn: &Connection,
    key: i64,
    messages: &[OutgoingMessage],
) -> rusqlite::Result<usize> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO reply_parts (turn_id, idx, text, message) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut new = 0;
    for (idx, message) in messages.iter().enumerate() {
        let (text, json) = match message {
            OutgoingMessage::Text { body } => (body.clone(), None),
            other => (
                other.describe(),
                Some(serde_json::to_string(other).unwrap_or_default()),
            ),
        };
        new += insert.execute(params![key, idx as i64, text, json])?;
    }
    Ok(new)
}

/// [`save_messages`], and the first part marked `sending` in the same transaction when the
/// parts are the ones just saved (not an earlier save's).
pub(super) fn save_messages_marking_first(
    conn: &Connection,
    key: i64,
    messages: &[OutgoingMessage],
) -> rusqlite::Result<(Vec<ReplyPart>, FirstPart)> {
    // Saves are whole (one transaction), so some parts new means all of them are.
    let new = insert_messages(conn, key, messages)?;
    let first = if new == 0 || messages.is_empty() {
        FirstPart::Unmarked
    } else {
        match mark_part_sending(conn, key, 0)? {
            Ok(at) => FirstPart::Marked { at },
            Err(refusal) => FirstPart::Refused(refusal),
        }
    };
    Ok((load_reply(conn, key)?.unwrap_or_default(), first))
}

pub(super) fn load_reply(conn: &Connection, key: i64) -> rusqlite::Result<Option<Vec<ReplyPart>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, text, outbound_id, sending_at, message, held_at FROM reply_parts
         WHERE turn_id = ?1 ORDER BY idx",
    )?;
    let parts = stmt
        .query_map(params![key], |r| {
            let text: String = r.get(1)?;
            let json: Option<String> = r.get(4)?;
            // A message this version cannot read (written by a newer one) goes out as its text.
            let message = json
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_else(|| OutgoingMessage::text(text.clone()));
            Ok(ReplyPart {
                index: r.get::<_, i64>(0)? as usize,
                text,
                message,
                outbound_id: r.get(2)?,
                sending_since: r.get(3)?,
                held_since: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(if parts.is_empty() { None } else { Some(parts) })
}

/// The 24-hour window closed before these parts went out: hold every part of `key` from
/// `from` on that Meta does not have, until the customer writes again.
pub(super) fn hold_parts(conn: &Connection, key: i64, from: usize) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reply_parts SET held_at = ?3, sending_at = NULL
         WHERE turn_id = ?1 AND idx >= ?2 AND outbound_id IS NULL",
    )?
    .execute(params![key, from as i64, now_millis()])?;
    Ok(())
}

/// Whether any part is held for the window (index `reply_parts_held`).
pub(super) fn any_held(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reply_parts INDEXED BY reply_parts_held
                        WHERE held_at IS NOT NULL)",
        [],
        |r| r.get(0),
    )
}

/// Turns of `lane` with parts held for the window, oldest first (index `reply_parts_held`).
pub(super) fn held_turns(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        // Every turn asks: the partial index holds only the held parts (usually none), and
        // the join reads each one's turn by its key, never scanning `turns`.
        "SELECT DISTINCT p.turn_id FROM reply_parts p INDEXED BY reply_parts_held
         CROSS JOIN turns t ON t.id = p.turn_id
         WHERE p.held_at IS NOT NULL AND t.phone_number_id = ?1 AND t.user = ?2
         ORDER BY p.turn_id",
    )?;
    let rows = stmt.query_map(params![lane.phone_number_id, lane.user], |r| r.get(0))?;
    rows.collect()
}

/// Why the store refused to mark a part `sending` ([`StoreError::SendRefused`]): the part must
/// not go out. The check runs in the same commit as the mark, so whichever process (replica)
/// committed the take-over, the opt-out or the outbox claim, no part is marked after it.
///
/// [`StoreError::SendRefused`]: super::StoreError::SendRefused
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// A turn's part: a person has the conversation now (taken over by an operator or a
    /// keyword; the agent's own `handoff_to_human` still lets its turn send the notice).
    WithPerson,
    /// A turn's part: the customer opted out.
    OptedOut,
    /// An outbox part: the message is no longer pending (an opt-out cancelled it).
    OutboxClosed,
    /// An outbox part (PostgreSQL): this replica's claim on the message ran out; another
    /// replica may be sending it now.
    OutboxClaimLost,
}

/// What [`Store::save_reply_marking_first`](super::Store::save_reply_marking_first) did with
/// the reply's first part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPart {
    /// Marked `sending` at this time (unix ms), in the commit that saved the reply: hand it to
    /// Meta next, without a mark of its own.
    Marked { at: i64 },
    /// The send fence refused it (nothing marked); the reply is saved.
    Refused(SendRefusal),
    /// The turn had saved its reply before (a resumed turn): the parts are that reply, nothing
    /// was marked; send them as any saved reply.
    Unmarked,
}

impl std::fmt::Display for SendRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendRefusal::WithPerson => "a person has the conversation",
            SendRefusal::OptedOut => "the customer opted out",
            SendRefusal::OutboxClosed => "the message was cancelled",
            SendRefusal::OutboxClaimLost => {
                "this replica's claim on the message ran out (another replica sends it)"
            }
        })
    }
}

/// About to hand the part to Meta: from this commit on, a crash leaves it `sending`. Refused
/// (nothing written) when a turn's conversation is with a person or opted out, or an outbox
/// message was cancelled, in the same transaction as the mark.
pub(super) fn mark_part_sending(
    conn: &Connection,
    turn_id: i64,
    index: usize,
) -> rusqlite::Result<Result<i64, SendRefusal>> {
    if let Some(refusal) = send_refusal(conn, turn_id)? {
        return Ok(Err(refusal));
    }
    let now = now_millis();
    conn.prepare_cached(
        "UPDATE reply_parts SET sending_at = ?3 WHERE turn_id = ?1 AND idx = ?2 AND outbound_id IS NULL",
    )?
    .execute(params![turn_id, index as i64, now])?;
    Ok(Ok(now))
}

/// What keeps the parts of `key` from going out now, if anything (see [`SendRefusal`]).
fn send_refusal(conn: &Connection, key: i64) -> rusqlite::Result<Option<SendRefusal>> {
    if key < 0 {
        // Operator replies and notices go out while a person has the conversation (that is
        // their point); an opt-out cancels the pending ones (`opt_out.rs`).
        let state: Option<String> = conn
            .prepare_cached("SELECT state FROM outbox WHERE id = ?1")?
            .query_row(params![-key], |r| r.get(0))
            .optional()?;
        return Ok(state
            .filter(|s| s != "pending")
            .map(|_| SendRefusal::OutboxClosed));
    }
    let gate: Option<(bool, bool)> = conn
        .prepare_cached(
            "SELECT c.state = 'human' AND COALESCE(c.trigger, '') <> 'tool', c.opted_out <> 0
             FROM turns t JOIN conversations c
                 ON c.phone_number_id = t.phone_number_id AND c.user = t.user
             WHERE t.id = ?1",
        )?
        .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match gate {
        Some((_, true)) => Some(SendRefusal::OptedOut),
        Some((true, _)) => Some(SendRefusal::WithPerson),
        _ => None,
    })
}

/// Meta answered with an error: it does not have the part, which may be sent again at once.
pub(super) fn clear_part_sending(
    conn: &Connection,
    turn_id: i64,
    index: usize,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reply_parts SET sending_at = NULL WHERE turn_id = ?1 AND idx = ?2 AND outbound_id IS NULL",
    )?
    .execute(params![turn_id, index as i64])?;
    Ok(())
}

/// Meta accepted the part (its answer, or a status notification naming the part). The first
/// id recorded stays.
pub(super) fn mark_part_sent(
    conn: &Connection,
    turn_id: i64,
    index: usize,
    outbound_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reply_parts SET outbound_id = ?3, sent_at = ?4, sending_at = NULL, held_at = NULL
         WHERE turn_id = ?1 AND idx = ?2 AND outbound_id IS NULL",
    )?
    .execute(params![turn_id, index as i64, outbound_id, now_millis()])?;
    Ok(())
}

/// A status notification carried callback data naming one of this database's parts: Meta has
/// that part, whatever the status says (a `failed` status is about delivery, not acceptance).
pub(super) fn confirm_from_status(
    conn: &Connection,
    database: &str,
    callback_data: &str,
    outbound_id: &str,
) -> rusqlite::Result<()> {
    let Some(part) = PartRef::parse(callback_data).filter(|p| p.database == database) else {
        return Ok(());
    };
    mark_part_sent(conn, part.turn_id, part.index, outbound_id)
}

/// Meta's id for the part, once recorded.
pub(super) fn part_outbound_id(
    conn: &Connection,
    turn_id: i64,
    index: usize,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT outbound_id FROM reply_parts WHERE turn_id = ?1 AND idx = ?2")?
        .query_row(params![turn_id, index as i64], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

pub(super) fn mark_part_failed(
    conn: &Connection,
    turn_id: i64,
    index: usize,
    error: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reply_parts SET error = ?3, sending_at = NULL, held_at = NULL
         WHERE turn_id = ?1 AND idx = ?2",
    )?
    .execute(params![turn_id, index as i64, error])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_names_the_part_and_reads_back() {
        let part = PartRef {
            database: "00ff".into(),
            turn_id: 42,
            index: 3,
        };
        assert_eq!(part.callback_data(), "wagate:00ff:42:3");
        assert_eq!(PartRef::parse(&part.callback_data()), Some(part));
    }

    #[test]
    fn callback_data_of_other_senders_is_ignored() {
        for other in [
            "random_string",
            "wagate:",
            "wagate::1:2",
            "wagate:ab:x:2",
            "wagate:ab:1:2:3",
        ] {
            assert_eq!(PartRef::parse(other), None, "{other}");
        }
    }
}
