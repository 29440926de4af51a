//! Conversations as operators see them: who has each one (the agent or a person), the
//! messages in and out for the console, and the outbox (messages that are not a turn's reply:
//! an operator's replies and the handoff notice), sent part by part exactly once like replies.
//!
//! Every function runs inside the writer's transaction; the `impl Store` block at the end is
//! the API the handoff service and the operator routes use.

use super::ops::now_millis;
use super::{Batch, InboundState, ReplyPart, Store, StoreError};
use crate::inbox::LaneKey;
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS conversations (
    phone_number_id  TEXT NOT NULL,
    user             TEXT NOT NULL,
    state            TEXT NOT NULL,                 -- agent | human
    since            INTEGER NOT NULL,              -- unix ms of the last state change
    trigger          TEXT,                          -- operator | keyword | tool | timeout
    reason           TEXT,                          -- why a person was asked for (the agent's words)
    last_operator_at INTEGER,                       -- unix ms of the last operator reply
    PRIMARY KEY (phone_number_id, user)
);
CREATE INDEX IF NOT EXISTS conversations_human ON conversations (since) WHERE state = 'human';

CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number_id TEXT NOT NULL,
    user            TEXT NOT NULL,
    author          TEXT NOT NULL,                  -- operator | agent (the handoff notice)
    text            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL,                  -- pending | sent | failed
    error           TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_by_lane ON outbox (phone_number_id, user);

CREATE TABLE IF NOT EXISTS outbox_parts (
    outbox_id   INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    outbound_id TEXT,                               -- set once Meta accepted the part
    sent_at     INTEGER,
    error       TEXT,
    PRIMARY KEY (outbox_id, idx)
);
"#;

/// Note on messages that arrive while a person has the conversation: kept and shown, never
/// answered by the agent (not even after the release).
pub const HELD_FOR_PERSON: &str = "arrived while a person had the conversation";
/// Note on the messages still waiting when a conversation is handed over.
pub const CLOSED_AT_HANDOFF: &str = "the conversation was handed to a person";
/// Note on a customer message that asked for a person (`handoff.keywords`).
pub const ASKED_FOR_PERSON: &str = "asked for a person (handoff keyword)";

pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// A customer message that asked for a person: recorded with the batch, and in the same commit
/// the conversation goes to `human` and the notice (`parts`, already formatted and split) is
/// queued in the outbox.
#[derive(Debug, Clone)]
pub struct KeywordHandoff {
    pub lane: LaneKey,
    pub message_id: String,
    pub notice: Vec<String>,
}

/// Who answers a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Agent,
    Human,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Agent => "agent",
            Holder::Human => "human",
        }
    }
}

/// A conversation in the `human` state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanConversation {
    pub lane: LaneKey,
    /// Unix ms when it went to a person.
    pub since: i64,
    pub last_operator_at: Option<i64>,
    pub trigger: Option<String>,
    pub reason: Option<String>,
}

/// One line of the conversation list.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub lane: LaneKey,
    pub contact_name: Option<String>,
    pub holder: Holder,
    /// Unix ms of the newest message in or out.
    pub last_message_at: i64,
}

/// One message of a conversation, in or out.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub inbound: bool,
    /// customer | agent | operator
    pub author: String,
    pub kind: String,
    pub text: String,
    /// Unix ms.
    pub at: i64,
    /// In: the inbox state (pending, done, skipped...). Out: pending, sent, delivered, read,
    /// failed.
    pub status: String,
    /// Meta's id: the inbound wamid, or the wamid Meta gave an accepted outbound part.
    pub message_id: Option<String>,
}

/// A message of the outbox still to send.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub lane: LaneKey,
    pub author: String,
    pub text: String,
    pub parts: Vec<ReplyPart>,
}

/// The intake hook: keyword handoffs of the batch first, then every message to answer of a
/// conversation a person has is kept without a turn. Runs inside the record job (which may run
/// twice: both steps are idempotent). Returns the conversations handed over by this batch.
pub(super) fn hold_for_people(
    conn: &Connection,
    batch: &mut Batch,
) -> rusqlite::Result<Vec<LaneKey>> {
    let mut handed = Vec::new();
    for k in &batch.handoffs {
        let seen: bool = conn
            .prepare_cached("SELECT COUNT(*) > 0 FROM inbound WHERE message_id = ?1")?
            .query_row(params![k.message_id], |r| r.get(0))?;
        if seen {
            continue; // a redelivery: the first delivery already handed it over
        }
        if hand_over(conn, &k.lane, "keyword", None)? {
            queue(conn, &k.lane, "agent", "", &k.notice)?;
            handed.push(k.lane.clone());
        }
    }
    let mut checked: Vec<(LaneKey, bool)> = Vec::new();
    for m in batch.messages.iter_mut() {
        if m.state != InboundState::Pending {
            continue;
        }
        let human = match checked.iter().find(|(lane, _)| *lane == m.lane) {
            Some((_, human)) => *human,
            None => {
                let human = holder(conn, &m.lane)? == Holder::Human;
                checked.push((m.lane.clone(), human));
                human
            }
        };
        if human {
            m.state = InboundState::Skipped;
            m.note = Some(HELD_FOR_PERSON.into());
        }
    }
    Ok(handed)
}

fn holder(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Holder> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM conversations WHERE phone_number_id = ?1 AND user = ?2")?
        .query_row(params![lane.phone_number_id, lane.user], |r| r.get(0))
        .optional()?;
    Ok(match state.as_deref() {
        Some("human") => Holder::Human,
        _ => Holder::Agent,
    })
}

/// To `human`; `false` when it already was. Messages still waiting for the agent are closed
/// (a running turn is stopped by the caller).
fn hand_over(
    conn: &Connection,
    lane: &LaneKey,
    trigger: &str,
    reason: Option<&str>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO conversations (phone_number_id, user, state, since, trigger, reason)
             VALUES (?1, ?2, 'human', ?3, ?4, ?5)
             ON CONFLICT (phone_number_id, user) DO UPDATE SET
                 state = 'human', since = excluded.since, trigger = excluded.trigger,
                 reason = excluded.reason, last_operator_at = NULL
             WHERE conversations.state <> 'human'",
        )?
        .execute(params![
            lane.phone_number_id,
            lane.user,
            now_millis(),
            trigger,
            reason
        ])?;
    if changed > 0 {
        conn.prepare_cached(
            "UPDATE OR FAIL inbound SET state = 'skipped', note = ?3
             WHERE phone_number_id = ?1 AND user = ?2 AND state = 'pending'",
        )?
        .execute(params![lane.phone_number_id, lane.user, CLOSED_AT_HANDOFF])?;
    }
    Ok(changed > 0)
}

fn release(conn: &Connection, lane: &LaneKey, trigger: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE conversations SET state = 'agent', since = ?3, trigger = ?4, reason = NULL
             WHERE phone_number_id = ?1 AND user = ?2 AND state = 'human'",
        )?
        .execute(params![
            lane.phone_number_id,
            lane.user,
            now_millis(),
            trigger
        ])?;
    Ok(changed > 0)
}

/// Queue a message (its parts already formatted and split); returns its id.
fn queue(
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

fn humans(conn: &Connection) -> rusqlite::Result<Vec<HumanConversation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT phone_number_id, user, since, last_operator_at, trigger, reason
         FROM conversations WHERE state = 'human' ORDER BY since",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(HumanConversation {
            lane: LaneKey {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
            },
            since: r.get(2)?,
            last_operator_at: r.get(3)?,
            trigger: r.get(4)?,
            reason: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Newest activity first. One row per conversation a customer ever wrote in. One pass over
/// `inbound` (the contact name is the newest message's, SQLite's bare column beside `MAX`).
fn list(conn: &Connection, only_human: bool) -> rusqlite::Result<Vec<ConversationRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.phone_number_id, l.user,
                COALESCE(l.contact_name, (SELECT contact_name FROM inbound n
                   WHERE n.phone_number_id = l.phone_number_id AND n.user = l.user
                   AND contact_name IS NOT NULL ORDER BY seq DESC LIMIT 1)),
                COALESCE(c.state, 'agent'),
                MAX(i.received_at, COALESCE((SELECT MAX(created_at) FROM outbox o
                   WHERE o.phone_number_id = l.phone_number_id AND o.user = l.user), 0)) AS last
         FROM (SELECT phone_number_id, user, contact_name, MAX(seq) AS seq
               FROM inbound GROUP BY phone_number_id, user) l
         JOIN inbound i ON i.seq = l.seq
         LEFT JOIN conversations c ON c.phone_number_id = l.phone_number_id AND c.user = l.user
         WHERE (?1 = 0 OR c.state = 'human')
         ORDER BY last DESC",
    )?;
    let rows = stmt.query_map(params![only_human as i64], |r| {
        let state: String = r.get(3)?;
        Ok(ConversationRow {
            lane: LaneKey {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
            },
            contact_name: r.get(2)?,
            holder: if state == "human" {
                Holder::Human
            } else {
                Holder::Agent
            },
            last_message_at: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Text the console shows for an inbound message, from Meta's JSON.
const INBOUND_TEXT: &str = "COALESCE(json_extract(r.raw, '$.text.body'),
    json_extract(r.raw, '$.interactive.button_reply.title'),
    json_extract(r.raw, '$.interactive.list_reply.title'),
    json_extract(r.raw, '$.button.text'),
    json_extract(r.raw, '$.image.caption'), json_extract(r.raw, '$.video.caption'),
    json_extract(r.raw, '$.document.caption'), json_extract(r.raw, '$.document.filename'),
    json_extract(r.raw, '$.reaction.emoji'), json_extract(r.raw, '$.location.name'), '')";

/// The delivery status of an outbound part: Meta's latest, else what we know from sending
/// (`not_sent`: its turn or message was closed before it went out, a take-over say).
fn part_status(owner_closed: &str) -> String {
    format!(
        "COALESCE(s.status, CASE WHEN p.outbound_id IS NOT NULL THEN 'sent'
         WHEN p.error IS NOT NULL THEN 'failed' WHEN {owner_closed} THEN 'not_sent'
         ELSE 'pending' END)"
    )
}

/// `None` when no customer ever wrote in this conversation.
fn messages(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<Vec<MessageRow>>> {
    let turn_status = part_status("t.state <> 'running'");
    let outbox_status = part_status("o.state <> 'pending'");
    let sql = format!(
        "SELECT 1, 'customer', i.kind, {INBOUND_TEXT}, i.received_at, i.state, i.seq, i.message_id
           FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
           WHERE i.phone_number_id = ?1 AND i.user = ?2
         UNION ALL
         SELECT 0, 'agent', 'text', p.text, COALESCE(p.sent_at, t.started_at), {turn_status}, p.idx, p.outbound_id
           FROM turns t JOIN reply_parts p ON p.turn_id = t.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE t.phone_number_id = ?1 AND t.user = ?2
         UNION ALL
         SELECT 0, o.author, 'text', p.text, COALESCE(p.sent_at, o.created_at), {outbox_status}, p.idx, p.outbound_id
           FROM outbox o JOIN outbox_parts p ON p.outbox_id = o.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE o.phone_number_id = ?1 AND o.user = ?2
         ORDER BY 5, 7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![lane.phone_number_id, lane.user], |r| {
            Ok(MessageRow {
                inbound: r.get::<_, i64>(0)? == 1,
                author: r.get(1)?,
                kind: r.get(2)?,
                text: r.get(3)?,
                at: r.get(4)?,
                status: r.get(5)?,
                message_id: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(if rows.iter().any(|m| m.inbound) {
        Some(rows)
    } else {
        None
    })
}

/// Meta's timestamp (unix seconds) of the customer's newest message.
fn last_customer_timestamp(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MAX(timestamp) FROM inbound WHERE phone_number_id = ?1 AND user = ?2",
    )?
    .query_row(params![lane.phone_number_id, lane.user], |r| r.get(0))
}

fn pending_outbox(conn: &Connection) -> rusqlite::Result<Vec<OutboxItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, phone_number_id, user, author, text FROM outbox
         WHERE state = 'pending' ORDER BY id LIMIT 100",
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
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(items)
}

/// Reads for operators run on a connection of their own, outside the writer thread: a console
/// listing a long history never holds up the commits webhooks wait for (WAL lets readers and
/// the writer run side by side). A connection per read: operator reads are few.
async fn read<T: Send + 'static>(
    store: &Store,
    op: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let path = store.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        op(&conn).map_err(StoreError::from)
    })
    .await
    .map_err(|_| StoreError::WriterGone)?
}

impl Store {
    /// Who answers `lane` now.
    pub async fn holder(&self, lane: LaneKey) -> Result<Holder, StoreError> {
        read(self, move |c| holder(c, &lane)).await
    }

    /// Hand `lane` to a person (`trigger`: operator, keyword, tool). Its messages still waiting
    /// for the agent are closed; `notice` (formatted parts), when given, is queued for the
    /// customer in the same commit. `false` (and nothing queued) when a person already had it.
    pub async fn hand_over(
        &self,
        lane: LaneKey,
        trigger: &'static str,
        reason: Option<String>,
        notice: Vec<String>,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let changed = hand_over(c, &lane, trigger, reason.as_deref())?;
            if changed && !notice.is_empty() {
                queue(c, &lane, "agent", "", &notice)?;
            }
            Ok(changed)
        })
        .await
    }

    /// Back to the agent; `false` when it already was.
    pub async fn release(&self, lane: LaneKey, trigger: &'static str) -> Result<bool, StoreError> {
        self.call(move |c| release(c, &lane, trigger)).await
    }

    /// Every conversation a person has, longest first.
    pub async fn human_conversations(&self) -> Result<Vec<HumanConversation>, StoreError> {
        read(self, humans).await
    }

    pub async fn conversations(
        &self,
        only_human: bool,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        read(self, move |c| list(c, only_human)).await
    }

    /// `None` when the conversation is unknown.
    pub async fn conversation_messages(
        &self,
        lane: LaneKey,
    ) -> Result<Option<Vec<MessageRow>>, StoreError> {
        read(self, move |c| messages(c, &lane)).await
    }

    /// Meta's timestamp of the customer's newest message (unix seconds), for the 24 h window.
    pub async fn last_customer_timestamp(&self, lane: LaneKey) -> Result<Option<i64>, StoreError> {
        read(self, move |c| last_customer_timestamp(c, &lane)).await
    }

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
