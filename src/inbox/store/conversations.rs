//! Who has each conversation: the agent or a person (`conversations`), changed by a take-over,
//! a release, or a customer's keyword at intake (the intake hook below). Also the schema of the
//! outbox (`outbox.rs`) and what operators read (`conversation_view.rs`).
//!
//! The functions run inside the writer's transaction (reads for operators excepted); the
//! `impl Sqlite` block at the end is the SQLite half of the API the handoff service uses.

use super::conversation_view::read;
use super::now_millis;
use super::outbox::queue;
use super::{Batch, InboundState, Sqlite, StoreError};
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
-- An outbox message's parts are reply parts keyed by the negated outbox id (parts.rs).
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

impl Sqlite {
    /// Who answers `lane` now.
    pub(super) async fn holder(&self, lane: LaneKey) -> Result<Holder, StoreError> {
        read(self, move |c| holder(c, &lane)).await
    }

    /// Hand `lane` to a person (`trigger`: operator, keyword, tool). Its messages still waiting
    /// for the agent are closed; `notice` (formatted parts), when given, is queued for the
    /// customer in the same commit. `false` (and nothing queued) when a person already had it.
    pub(super) async fn hand_over(
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
    pub(super) async fn release(
        &self,
        lane: LaneKey,
        trigger: &'static str,
    ) -> Result<bool, StoreError> {
        self.call(move |c| release(c, &lane, trigger)).await
    }

    /// Every conversation a person has, longest first.
    pub(super) async fn human_conversations(&self) -> Result<Vec<HumanConversation>, StoreError> {
        read(self, humans).await
    }
}
