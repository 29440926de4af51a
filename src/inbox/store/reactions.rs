//! Reactions: a customer's emoji on a message of the conversation, kept per reacted message
//! (`reactions`), so operators see which message got which emoji and the agent can be told
//! about a reaction to one of its own messages (`spec.whatsapp.reactions_to_agent`).
//!
//! The reaction message itself is recorded like every message (`inbound`); this table is the
//! current emoji per reacted message. An empty emoji is Meta's "reaction removed": the row
//! keeps `''`, so a late redelivery of the older reaction (Meta's timestamp) cannot bring it
//! back.

use super::conversation_view::read;
use super::{Batch, InboundState, Sqlite, StoreError};
use crate::inbox::LaneKey;
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS reactions (
    phone_number_id TEXT NOT NULL,
    user            TEXT NOT NULL,
    target_id       TEXT NOT NULL,                  -- the wamid reacted to
    emoji           TEXT NOT NULL,                  -- '' once the reaction was removed
    message_id      TEXT NOT NULL,                  -- the reaction's own wamid
    reacted_at      INTEGER NOT NULL,               -- Meta's timestamp (unix seconds)
    to_agent        INTEGER NOT NULL,               -- 1: the reacted message is one we sent
    PRIMARY KEY (phone_number_id, user, target_id)
);
"#;

/// Note on a reaction the agent is not told about: to a message we did not send.
pub const REACTION_NOT_TO_AGENT: &str = "a reaction to a message the agent did not send";
/// Note on a reaction the agent is not told about: the customer took it back.
pub const REACTION_REMOVED: &str = "a reaction was removed";

/// A customer's current reaction to a message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The wamid reacted to.
    pub target_id: String,
    pub emoji: String,
    /// Meta's timestamp (unix seconds).
    pub reacted_at: i64,
    /// The reacted message is one we sent (the agent's or an operator's).
    pub to_agent: bool,
}

pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// The intake step: every new reaction of the batch updates its message's row. A reaction
/// marked to be answered (the agent wants reactions) stays so only when it is an emoji on one
/// of our messages. Redeliveries change nothing (their message id is already recorded).
pub(super) fn record(conn: &Connection, batch: &mut Batch) -> rusqlite::Result<()> {
    for m in batch.messages.iter_mut().filter(|m| m.kind == "reaction") {
        let parsed: serde_json::Value;
        let json = match &m.json {
            Some(json) => json,
            None => {
                parsed = serde_json::from_str(&m.raw).unwrap_or_default();
                &parsed
            }
        };
        let reaction = &json["reaction"];
        let Some(target) = reaction["message_id"].as_str().filter(|t| !t.is_empty()) else {
            continue;
        };
        let emoji = reaction["emoji"].as_str().unwrap_or("").trim().to_owned();
        let seen: bool = conn
            .prepare_cached("SELECT COUNT(*) > 0 FROM inbound WHERE message_id = ?1")?
            .query_row(params![m.message_id], |r| r.get(0))?;
        if seen {
            continue;
        }
        let to_agent = sent_by_us(conn, target)?.is_some();
        conn.prepare_cached(
            "INSERT INTO reactions (phone_number_id, user, target_id, emoji, message_id,
                 reacted_at, to_agent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (phone_number_id, user, target_id) DO UPDATE SET
                 emoji = excluded.emoji, message_id = excluded.message_id,
                 reacted_at = excluded.reacted_at, to_agent = excluded.to_agent
             WHERE excluded.reacted_at >= reactions.reacted_at",
        )?
        .execute(params![
            m.lane.phone_number_id,
            m.lane.user,
            target,
            emoji,
            m.message_id,
            m.timestamp,
            to_agent
        ])?;
        if m.state == InboundState::Pending {
            if emoji.is_empty() {
                m.state = InboundState::Skipped;
                m.note = Some(REACTION_REMOVED.into());
            } else if !to_agent {
                m.state = InboundState::Skipped;
                m.note = Some(REACTION_NOT_TO_AGENT.into());
            }
        }
    }
    Ok(())
}

/// The text of our message `target` (a part of an agent reply or of an operator's message:
/// both are reply parts), `None` when we did not send it.
fn sent_by_us(conn: &Connection, target: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT text FROM reply_parts WHERE outbound_id = ?1 LIMIT 1")?
        .query_row(params![target], |r| r.get(0))
        .optional()
}

fn reactions(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Vec<Reaction>> {
    let mut stmt = conn.prepare_cached(
        "SELECT target_id, emoji, reacted_at, to_agent FROM reactions
         WHERE phone_number_id = ?1 AND user = ?2 AND emoji <> '' ORDER BY reacted_at",
    )?;
    let rows = stmt.query_map(params![lane.phone_number_id, lane.user], |r| {
        Ok(Reaction {
            target_id: r.get(0)?,
            emoji: r.get(1)?,
            reacted_at: r.get(2)?,
            to_agent: r.get(3)?,
        })
    })?;
    rows.collect()
}

impl Sqlite {
    /// The text of the message we sent as `wamid`, for quoting it to the agent; `None` when it
    /// is not one of ours.
    pub(super) async fn sent_message_text(
        &self,
        wamid: String,
    ) -> Result<Option<String>, StoreError> {
        read(self, move |c| sent_by_us(c, &wamid)).await
    }

    /// The customer's current reactions in `lane` (removed ones left out), oldest first.
    pub(super) async fn reactions(&self, lane: LaneKey) -> Result<Vec<Reaction>, StoreError> {
        read(self, move |c| reactions(c, &lane)).await
    }
}
