//! Opt-out: a customer who sent a STOP keyword (or stopped marketing messages in WhatsApp,
//! Meta's `user_preferences`) gets the confirmation once and then nothing: no agent turn, no
//! operator message, until a resume keyword (or Meta's `resume`).
//!
//! The state is columns of `conversations` (so it survives restarts) and changes inside the
//! webhook's own commit, like a keyword handoff: the keyword message, the state change, the
//! closing of what was still waiting and the confirmation queued in the outbox are one commit,
//! so a redelivered STOP (its message id is already recorded) changes nothing and sends nothing.

use super::conversation_view::read;
use super::conversations::ASKED_FOR_PERSON;
use super::now_millis;
use super::outbox::queue;
use super::schema::add_column;
use super::{Batch, InboundState, KeywordHandoff, NewInbound, Sqlite, StoreError};
use crate::inbox::LaneKey;
use rusqlite::{params, Connection, OptionalExtension};

/// Note on a customer message that opted out (`opt_out.keywords`).
pub const OPTED_OUT_BY_KEYWORD: &str = "opted out (opt-out keyword)";
/// Note on messages that arrive, or were still waiting, while the customer is opted out.
pub const WHILE_OPTED_OUT: &str = "the customer opted out";

/// Why the customer is opted out (or back in): the `opt_source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptSource {
    /// A message equal to one of `opt_out.keywords` / `resume_keywords`.
    Keyword,
    /// Meta's `user_preferences` notification (marketing messages stopped or resumed).
    UserPreferences,
}

impl OptSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OptSource::Keyword => "keyword",
            OptSource::UserPreferences => "user_preferences",
        }
    }
}

/// One opt-out or resume, applied in the commit that records its webhook.
#[derive(Debug, Clone)]
pub struct OptChange {
    pub lane: LaneKey,
    /// The customer's keyword message; `None` for a `user_preferences` notification.
    pub message_id: Option<String>,
    /// `true`: opts out; `false`: resumes.
    pub opt_out: bool,
    pub source: OptSource,
    /// Meta's timestamp (unix seconds): a late redelivery of an older change never undoes a
    /// newer one.
    pub timestamp: i64,
    /// Queued for the customer when this change opts them out (formatted and split); empty:
    /// nothing is sent.
    pub reply: Vec<String>,
}

/// The opt-out state of a conversation, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptedOut {
    pub lane: LaneKey,
    /// Unix ms when the customer opted out.
    pub since: i64,
    /// `keyword` or `user_preferences`.
    pub source: String,
    /// Meta's timestamp (unix seconds) of the STOP.
    pub timestamp: i64,
}

/// Columns added to `conversations` (see `conversations.rs` for the table).
pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    add_column(
        conn,
        "conversations",
        "opted_out",
        "INTEGER NOT NULL DEFAULT 0",
    )?;
    add_column(conn, "conversations", "opted_out_at", "INTEGER")?; // unix ms of the change
    add_column(conn, "conversations", "opt_source", "TEXT")?; // keyword | user_preferences
    add_column(conn, "conversations", "opt_ts", "INTEGER")?; // Meta's seconds of the change
    Ok(())
}

/// What one batch changed: the conversations it opted out (with Meta's timestamp of the STOP)
/// and those it opted back in.
pub(super) type Applied = (Vec<(LaneKey, i64)>, Vec<LaneKey>);

/// The intake step, before the handoff's: applies the batch's notifications, then walks its
/// messages in arrival order so a message after a STOP of the same body is not answered and
/// one after a resume is. A message of an opted-out customer is kept without a turn (and asks
/// for no person). Idempotent, as the record job may run twice. Returns the conversations
/// this batch opted out (with Meta's timestamp) and those it resumed.
pub(super) fn apply(conn: &Connection, batch: &mut Batch) -> rusqlite::Result<Applied> {
    let Batch {
        messages,
        opt_changes,
        handoffs,
        ..
    } = batch;
    let mut changed = Changed::default();
    for change in opt_changes.iter().filter(|c| c.message_id.is_none()) {
        changed.note(change, change_state(conn, change)?);
    }
    let mut known: Vec<(LaneKey, bool)> = Vec::new();
    for i in 0..messages.len() {
        let (earlier, rest) = messages.split_at_mut(i);
        let m = &mut rest[0];
        let change = opt_changes
            .iter()
            .find(|c| c.message_id.as_deref() == Some(m.message_id.as_str()));
        if let Some(change) = change {
            if !recorded(conn, &m.message_id)? {
                changed.note(change, change_state(conn, change)?);
            }
            known.retain(|(lane, _)| *lane != m.lane);
            known.push((m.lane.clone(), change.opt_out));
            if change.opt_out {
                close_for_stop(m, earlier, handoffs);
            }
            continue;
        }
        let out = match known.iter().find(|(lane, _)| *lane == m.lane) {
            Some((_, out)) => *out,
            None => {
                let out = is_opted_out(conn, &m.lane)?;
                known.push((m.lane.clone(), out));
                out
            }
        };
        if out {
            close_while_opted_out(m, handoffs);
        }
    }
    Ok(changed.into_applied())
}

/// What a batch changed, for both backends' intake: the conversations it opted out (with
/// Meta's timestamp) and those it resumed; a later change of one conversation replaces an
/// earlier one.
#[derive(Default)]
pub(super) struct Changed {
    opted: Vec<(LaneKey, i64)>,
    resumed: Vec<LaneKey>,
}

impl Changed {
    /// Notes `change` when the backend's state change did change something.
    pub(super) fn note(&mut self, change: &OptChange, changed: bool) {
        if !changed {
            return;
        }
        self.opted.retain(|(lane, _)| *lane != change.lane);
        self.resumed.retain(|lane| *lane != change.lane);
        if change.opt_out {
            self.opted.push((change.lane.clone(), change.timestamp));
        } else {
            self.resumed.push(change.lane.clone());
        }
    }

    pub(super) fn into_applied(self) -> Applied {
        (self.opted, self.resumed)
    }
}

/// A STOP keyword: the message itself is kept unanswered, and so are the earlier messages of
/// the same customer in this body (those already in the inbox are closed by the backend's
/// state change).
pub(super) fn close_for_stop(
    stop: &mut NewInbound,
    earlier: &mut [NewInbound],
    handoffs: &mut Vec<KeywordHandoff>,
) {
    stop.state = InboundState::Skipped;
    stop.note = Some(OPTED_OUT_BY_KEYWORD.into());
    handoffs.retain(|h| h.message_id != stop.message_id);
    for e in earlier.iter_mut().filter(|e| e.lane == stop.lane) {
        close_while_opted_out(e, handoffs);
    }
}

/// A message of a customer who opted out is kept without a turn and asks for no person.
pub(super) fn close_while_opted_out(m: &mut NewInbound, handoffs: &mut Vec<KeywordHandoff>) {
    let asked_for_person = m.note.as_deref() == Some(ASKED_FOR_PERSON);
    if m.state == InboundState::Pending || asked_for_person {
        m.state = InboundState::Skipped;
        m.note = Some(WHILE_OPTED_OUT.into());
        handoffs.retain(|h| h.message_id != m.message_id);
    }
}

fn recorded(conn: &Connection, message_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT COUNT(*) > 0 FROM inbound WHERE message_id = ?1")?
        .query_row(params![message_id], |r| r.get(0))
}

/// Applies one change; `true` when the state changed. Opting out also closes the messages
/// still waiting for the agent, cancels unsent outbox messages (operator replies, a handoff
/// notice) and queues the confirmation.
fn change_state(conn: &Connection, change: &OptChange) -> rusqlite::Result<bool> {
    let lane = &change.lane;
    let now = now_millis();
    let changed = if change.opt_out {
        conn.prepare_cached(
            "INSERT INTO conversations (phone_number_id, user, state, since, opted_out,
                 opted_out_at, opt_source, opt_ts)
             VALUES (?1, ?2, 'agent', ?3, 1, ?3, ?4, ?5)
             ON CONFLICT (phone_number_id, user) DO UPDATE SET
                 opted_out = 1, opted_out_at = excluded.opted_out_at,
                 opt_source = excluded.opt_source, opt_ts = excluded.opt_ts
             WHERE conversations.opted_out = 0
               AND COALESCE(conversations.opt_ts, 0) <= excluded.opt_ts",
        )?
        .execute(params![
            lane.phone_number_id,
            lane.user,
            now,
            change.source.as_str(),
            change.timestamp
        ])?
    } else {
        conn.prepare_cached(
            "UPDATE conversations SET opted_out = 0, opted_out_at = ?3, opt_source = ?4,
                 opt_ts = ?5
             WHERE phone_number_id = ?1 AND user = ?2 AND opted_out = 1
               AND COALESCE(opt_ts, 0) <= ?5",
        )?
        .execute(params![
            lane.phone_number_id,
            lane.user,
            now,
            change.source.as_str(),
            change.timestamp
        ])?
    };
    if changed == 0 {
        return Ok(false);
    }
    if change.opt_out {
        conn.prepare_cached(
            "UPDATE OR FAIL inbound SET state = 'skipped', note = ?3
             WHERE phone_number_id = ?1 AND user = ?2 AND state = 'pending'",
        )?
        .execute(params![lane.phone_number_id, lane.user, WHILE_OPTED_OUT])?;
        conn.prepare_cached(
            "UPDATE outbox SET state = 'failed', error = ?3
             WHERE phone_number_id = ?1 AND user = ?2 AND state = 'pending'",
        )?
        .execute(params![lane.phone_number_id, lane.user, WHILE_OPTED_OUT])?;
        if !change.reply.is_empty() {
            queue(conn, lane, "agent", "", &change.reply)?;
        }
    }
    Ok(true)
}

pub(super) fn is_opted_out(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<bool> {
    let out: Option<bool> = conn
        .prepare_cached(
            "SELECT opted_out <> 0 FROM conversations WHERE phone_number_id = ?1 AND user = ?2",
        )?
        .query_row(params![lane.phone_number_id, lane.user], |r| r.get(0))
        .optional()?;
    Ok(out.unwrap_or(false))
}

/// Every opted-out conversation (the handoff service's mirror, the operator views).
pub(super) fn opted_out(conn: &Connection) -> rusqlite::Result<Vec<OptedOut>> {
    let mut stmt = conn.prepare_cached(
        "SELECT phone_number_id, user, COALESCE(opted_out_at, since),
                COALESCE(opt_source, 'keyword'), COALESCE(opt_ts, 0)
         FROM conversations WHERE opted_out <> 0",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OptedOut {
            lane: LaneKey {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
            },
            since: r.get(2)?,
            source: r.get(3)?,
            timestamp: r.get(4)?,
        })
    })?;
    rows.collect()
}

impl Sqlite {
    /// Every opted-out conversation.
    pub(super) async fn opted_out_conversations(&self) -> Result<Vec<OptedOut>, StoreError> {
        read(self, opted_out).await
    }

    /// Whether the customer of `lane` is opted out now.
    pub(super) async fn is_opted_out(&self, lane: LaneKey) -> Result<bool, StoreError> {
        read(self, move |c| is_opted_out(c, &lane)).await
    }
}
