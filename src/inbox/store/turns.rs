//! Turns: claiming a conversation's messages, closing a turn, finding unfinished work. Every
//! function runs inside the writer's transaction.

use super::now_millis;
use super::TurnOutcome;
use crate::inbox::{InboundRecord, LaneKey, Turn};
use rusqlite::{params, Connection, OptionalExtension};

/// A turn as the writer reads it: the messages' JSON is still text, parsed by the caller
/// outside the writer thread (the writer is the one thread every webhook waits for).
pub(super) struct ClaimedTurn {
    pub(super) id: i64,
    pub(super) lane: LaneKey,
    /// In arrival order; the JSON still text.
    pub(super) messages: Vec<(InboundRecord, String)>,
    pub(super) attempt: u32,
}

impl ClaimedTurn {
    pub(super) fn into_turn(self) -> Turn {
        let messages = self
            .messages
            .into_iter()
            .map(|(mut record, raw)| {
                if record.raw.is_null() {
                    record.raw = parse_raw(&raw);
                }
                record
            })
            .collect();
        Turn {
            id: self.id,
            lane: self.lane,
            messages,
            attempt: self.attempt,
        }
    }
}

/// Most messages one turn answers. A conversation with more pending (a flood, a backlog after
/// an outage) is answered in several turns, oldest messages first: one turn never holds an
/// unbounded prompt, memory or claim transaction.
pub const MAX_MESSAGES_PER_TURN: usize = 50;

/// The lane's running turn, if any (index `turns_running`).
pub(super) const INTERRUPTED_TURN: &str = "SELECT id, attempts FROM turns
    WHERE phone_number_id = ?1 AND user = ?2 AND state = 'running' ORDER BY id LIMIT 1";

/// The lane's next turn: the turn a crash interrupted, if any (same id, same messages, so the
/// parts of its reply that Meta already accepted are not sent again), else the lane's oldest
/// pending messages (up to [`MAX_MESSAGES_PER_TURN`]), in arrival order, as a new turn.
pub(super) fn claim_turn(
    conn: &Connection,
    lane: &LaneKey,
) -> rusqlite::Result<Option<ClaimedTurn>> {
    if let Some((id, attempts)) = interrupted_turn(conn, lane)? {
        conn.prepare_cached("UPDATE turns SET attempts = attempts + 1 WHERE id = ?1")?
            .execute(params![id])?;
        let messages = select_messages(conn, TAKEN_BY_TURN, params![id])?;
        if !messages.is_empty() {
            return Ok(Some(ClaimedTurn {
                id,
                lane: lane.clone(),
                messages,
                attempt: attempts,
            }));
        }
        // A running turn without messages cannot be answered: close it and look for new work.
        finish_turn(
            conn,
            id,
            &TurnOutcome::Failed("turn had no messages".into()),
        )?;
    }
    claim_pending(conn, lane)
}

/// Close a lane's turn and, in the same transaction, take its next one: one trip to the
/// writer instead of two. Only for `Done` and `Failed` (a turn to retry stays the lane's turn);
/// the closed turn was the lane's only running one, so no interrupted turn is looked for.
pub(super) fn finish_and_claim(
    conn: &Connection,
    turn_id: i64,
    outcome: &TurnOutcome,
    lane: &LaneKey,
) -> rusqlite::Result<Option<ClaimedTurn>> {
    finish_turn(conn, turn_id, outcome)?;
    if matches!(outcome, TurnOutcome::RetryLater { .. }) {
        return Ok(None);
    }
    claim_pending(conn, lane)
}

/// The lane's oldest pending messages (at most [`MAX_MESSAGES_PER_TURN`]), in arrival order,
/// as a new turn. For a lane known to
/// have no running turn (the dispatcher closed its last one, or never started one since the
/// inbox was last scanned).
pub(super) fn claim_pending(
    conn: &Connection,
    lane: &LaneKey,
) -> rusqlite::Result<Option<ClaimedTurn>> {
    let pending = pending_messages(conn, lane, MAX_MESSAGES_PER_TURN)?;
    if pending.is_empty() {
        return Ok(None);
    }
    let id = insert_turn(conn, lane)?;
    take(conn, id, &pending)?;
    Ok(Some(ClaimedTurn {
        id,
        lane: lane.clone(),
        messages: pending,
        attempt: 0,
    }))
}

/// The lane's running turn: (id, attempts so far).
pub(super) fn interrupted_turn(
    conn: &Connection,
    lane: &LaneKey,
) -> rusqlite::Result<Option<(i64, u32)>> {
    conn.prepare_cached(INTERRUPTED_TURN)?
        .query_row(params![lane.phone_number_id, lane.user], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
}

/// The lane's oldest pending messages, in arrival order, at most `limit`.
pub(super) fn pending_messages(
    conn: &Connection,
    lane: &LaneKey,
    limit: usize,
) -> rusqlite::Result<Vec<(InboundRecord, String)>> {
    select_messages(
        conn,
        PENDING_BY_LANE,
        params![lane.phone_number_id, lane.user, limit as i64],
    )
}

/// A new running turn for the lane; returns its id.
pub(super) fn insert_turn(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO turns (phone_number_id, user, state, attempts, started_at)
         VALUES (?1, ?2, 'running', 1, ?3)",
    )?
    .execute(params![lane.phone_number_id, lane.user, now_millis()])?;
    Ok(conn.last_insert_rowid())
}

/// Hand pending messages to a turn.
pub(super) fn take(
    conn: &Connection,
    turn_id: i64,
    messages: &[(InboundRecord, String)],
) -> rusqlite::Result<()> {
    let mut take = conn.prepare_cached(
        "UPDATE OR FAIL inbound SET state = 'taken', turn_id = ?1 WHERE seq = ?2",
    )?;
    for (m, _) in messages {
        take.execute(params![turn_id, m.seq])?;
    }
    Ok(())
}

/// The messages of an interrupted turn (index `inbound_by_turn_id`).
pub(super) const TAKEN_BY_TURN: &str = "SELECT i.seq, message_id, phone_number_id,
        display_phone_number, user, contact_name, kind, timestamp, r.raw
    FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
    WHERE turn_id = ?1 AND state = 'taken' ORDER BY i.seq";

/// The pending messages of a lane (index `inbound_pending_by_lane`).
pub(super) const PENDING_BY_LANE: &str = "SELECT i.seq, message_id, phone_number_id,
        display_phone_number, user, contact_name, kind, timestamp, r.raw
    FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
    WHERE phone_number_id = ?1 AND user = ?2 AND state = 'pending' ORDER BY i.seq LIMIT ?3";

fn select_messages(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<(InboundRecord, String)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| {
        let record = InboundRecord {
            seq: r.get(0)?,
            message_id: r.get(1)?,
            phone_number_id: r.get(2)?,
            display_phone_number: r.get(3)?,
            user: r.get(4)?,
            contact_name: r.get(5)?,
            kind: r.get(6)?,
            timestamp: r.get(7)?,
            raw: serde_json::Value::Null, // parsed by `ClaimedTurn::into_turn`
        };
        Ok((record, r.get(8)?))
    })?;
    rows.collect()
}

/// Closes the messages of a turn (index `inbound_by_turn_id`).
///
/// `OR FAIL` (here and in the other updates of the hot path): an update that can touch several
/// rows would otherwise copy every page it changes into a statement journal first, so that a
/// constraint failure half-way could undo just the statement. These updates cannot fail a
/// constraint, and if a statement failed anyway, the writer rolls back the whole operation.
pub(super) const FINISH_MESSAGES: &str =
    "UPDATE OR FAIL inbound SET state = ?2, note = ?3 WHERE turn_id = ?1 AND state = 'taken'";

/// Close a turn. `RetryLater` leaves it running (its messages stay taken) so the next claim of
/// the lane resumes it.
pub(super) fn finish_turn(
    conn: &Connection,
    turn_id: i64,
    outcome: &TurnOutcome,
) -> rusqlite::Result<()> {
    if let TurnOutcome::RetryLater { reason, .. } = outcome {
        conn.prepare_cached("UPDATE turns SET error = ?2 WHERE id = ?1")?
            .execute(params![turn_id, reason])?;
        return Ok(());
    }
    let (turn_state, message_state, error) = outcome.states();
    conn.prepare_cached(
        "UPDATE OR FAIL turns SET state = ?2, finished_at = ?3, error = ?4 WHERE id = ?1",
    )?
    .execute(params![turn_id, turn_state.as_str(), now_millis(), error])?;
    conn.prepare_cached(FINISH_MESSAGES)?.execute(params![
        turn_id,
        message_state.as_str(),
        error
    ])?;
    Ok(())
}

/// Conversations with open messages (index `inbound_open_by_lane`).
pub(super) const OPEN_LANES: &str = "SELECT phone_number_id, user, MIN(seq) AS first FROM inbound
    WHERE state IN ('pending', 'taken')
    GROUP BY phone_number_id, user ORDER BY first";

/// Conversations with open messages after `cursor` in key order, at most `limit` (index
/// `inbound_open_by_lane`: reads about `limit` index entries per lane, however large the
/// backlog). Paging with the last lane as the next cursor visits every conversation with work
/// once per sweep.
pub(super) const OPEN_LANES_AFTER: &str = "SELECT DISTINCT phone_number_id, user FROM inbound
    WHERE state IN ('pending', 'taken') AND (phone_number_id, user) > (?1, ?2)
    ORDER BY phone_number_id, user LIMIT ?3";

pub(super) fn open_lanes_after(
    conn: &Connection,
    cursor: Option<&LaneKey>,
    limit: usize,
) -> rusqlite::Result<Vec<LaneKey>> {
    // '' sorts before every key: no cursor starts at the beginning.
    let (pnid, user) = cursor.map_or(("", ""), |c| (c.phone_number_id.as_str(), c.user.as_str()));
    let mut stmt = conn.prepare_cached(OPEN_LANES_AFTER)?;
    let rows = stmt.query_map(params![pnid, user, limit as i64], |r| {
        Ok(LaneKey {
            phone_number_id: r.get(0)?,
            user: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// Every conversation with work left: pending messages or an interrupted turn, ordered by its
/// oldest open message.
pub(super) fn open_lanes(conn: &Connection) -> rusqlite::Result<Vec<LaneKey>> {
    let mut stmt = conn.prepare_cached(OPEN_LANES)?;
    let rows = stmt.query_map([], |r| {
        Ok(LaneKey {
            phone_number_id: r.get(0)?,
            user: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// Written by us from a parsed `Value`, so it parses back; Null if someone edited it.
pub(super) fn parse_raw(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or(serde_json::Value::Null)
}
