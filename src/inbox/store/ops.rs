//! The SQL behind each store operation. Every function runs inside the writer's transaction, so
//! callers compose them freely and group commit stays one `COMMIT` per batch.

use super::{InboundState, NewInbound, RecordOutcome, ReplyPart, StatusUpdate, TurnOutcome};
use crate::inbox::{InboundRecord, LaneKey, Turn};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Insert-or-ignore on the message id: a redelivery, in this body, a later one or a concurrent
/// one, changes nothing and is reported as a duplicate.
pub(super) fn record_messages(
    conn: &Connection,
    messages: &[NewInbound],
) -> rusqlite::Result<RecordOutcome> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO inbound (message_id, phone_number_id, display_phone_number, user,
             contact_name, kind, timestamp, received_at, state, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut raw = conn.prepare_cached("INSERT INTO inbound_raw (seq, raw) VALUES (?1, ?2)")?;
    let received_at = now_millis();
    let mut outcome = RecordOutcome::default();
    for m in messages {
        let inserted = stmt.execute(params![
            m.message_id,
            m.lane.phone_number_id,
            m.display_phone_number,
            m.lane.user,
            m.contact_name,
            m.kind,
            m.timestamp,
            received_at,
            m.state.as_str(),
            m.note,
        ])?;
        if inserted == 0 {
            outcome.duplicates += 1;
            continue;
        }
        raw.execute(params![conn.last_insert_rowid(), m.raw])?;
        if m.state == InboundState::Pending {
            outcome.new_pending_messages += 1;
            if !outcome.new_pending.contains(&m.lane) {
                outcome.new_pending.push(m.lane.clone());
            }
        } else {
            outcome.new_skipped += 1;
        }
    }
    Ok(outcome)
}

/// Statuses only move forward (sent < delivered < read < played) and `failed` is terminal,
/// because Meta delivers them out of order.
pub(super) fn record_statuses(
    conn: &Connection,
    statuses: &[StatusUpdate],
) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO outbound_status (message_id, recipient, status, rank, updated_at, errors, pricing)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (message_id) DO UPDATE SET
             status = excluded.status, rank = excluded.rank, updated_at = excluded.updated_at,
             errors = COALESCE(excluded.errors, errors), pricing = COALESCE(excluded.pricing, pricing)
         WHERE excluded.rank > outbound_status.rank",
    )?;
    let mut parts = conn.prepare_cached(
        "UPDATE reply_parts SET status = ?2, status_rank = ?3
         WHERE outbound_id = ?1 AND status_rank < ?3",
    )?;
    let now = now_millis();
    for s in statuses {
        upsert.execute(params![
            s.message_id,
            s.recipient,
            s.status,
            s.rank,
            now,
            s.errors,
            s.pricing
        ])?;
        parts.execute(params![s.message_id, s.status, s.rank])?;
    }
    Ok(())
}

pub(super) fn record_dead_letter(
    conn: &Connection,
    reason: &str,
    body: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO dead_letters (received_at, reason, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![now_millis(), reason, body])?;
    Ok(())
}

/// A turn as the writer reads it: the messages' JSON is still text, parsed by the caller
/// outside the writer thread (the writer is the one thread every webhook waits for).
pub(super) struct ClaimedTurn {
    id: i64,
    lane: LaneKey,
    messages: Vec<(InboundRecord, String)>,
    attempt: u32,
}

impl ClaimedTurn {
    pub(super) fn into_turn(self) -> Turn {
        let messages = self
            .messages
            .into_iter()
            .map(|(mut record, raw)| {
                // Written by us from a parsed `Value`, so it parses back; Null if someone edited it.
                record.raw = serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
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

/// The lane's running turn, if any (index `turns_running`).
pub(super) const INTERRUPTED_TURN: &str = "SELECT id, attempts FROM turns
    WHERE phone_number_id = ?1 AND user = ?2 AND state = 'running' ORDER BY id LIMIT 1";

/// The lane's next turn: the turn a crash interrupted, if any (same id, same messages, so the
/// parts of its reply that Meta already accepted are not sent again), else every pending message
/// of the lane, in arrival order, as a new turn.
pub(super) fn claim_turn(
    conn: &Connection,
    lane: &LaneKey,
) -> rusqlite::Result<Option<ClaimedTurn>> {
    let interrupted: Option<(i64, u32)> = conn
        .prepare_cached(INTERRUPTED_TURN)?
        .query_row(params![lane.phone_number_id, lane.user], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((id, attempts)) = interrupted {
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

/// Every pending message of the lane, in arrival order, as a new turn.
fn claim_pending(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<ClaimedTurn>> {
    let pending = select_messages(
        conn,
        PENDING_BY_LANE,
        params![lane.phone_number_id, lane.user],
    )?;
    if pending.is_empty() {
        return Ok(None);
    }
    conn.prepare_cached(
        "INSERT INTO turns (phone_number_id, user, state, attempts, started_at)
         VALUES (?1, ?2, 'running', 1, ?3)",
    )?
    .execute(params![lane.phone_number_id, lane.user, now_millis()])?;
    let id = conn.last_insert_rowid();
    let mut take =
        conn.prepare_cached("UPDATE inbound SET state = 'taken', turn_id = ?1 WHERE seq = ?2")?;
    for (m, _) in &pending {
        take.execute(params![id, m.seq])?;
    }
    Ok(Some(ClaimedTurn {
        id,
        lane: lane.clone(),
        messages: pending,
        attempt: 0,
    }))
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
    WHERE phone_number_id = ?1 AND user = ?2 AND state = 'pending' ORDER BY i.seq";

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
pub(super) const FINISH_MESSAGES: &str =
    "UPDATE inbound SET state = ?2, note = ?3 WHERE turn_id = ?1 AND state = 'taken'";

/// Close a turn. `RetryLater` leaves it running (its messages stay taken) so the next claim of
/// the lane resumes it.
pub(super) fn finish_turn(
    conn: &Connection,
    turn_id: i64,
    outcome: &TurnOutcome,
) -> rusqlite::Result<()> {
    let (turn_state, message_state, error) = match outcome {
        TurnOutcome::Done => ("done", "done", None),
        TurnOutcome::Failed(reason) => ("failed", "failed", Some(reason.as_str())),
        TurnOutcome::RetryLater { reason, .. } => {
            conn.prepare_cached("UPDATE turns SET error = ?2 WHERE id = ?1")?
                .execute(params![turn_id, reason])?;
            return Ok(());
        }
    };
    conn.prepare_cached("UPDATE turns SET state = ?2, finished_at = ?3, error = ?4 WHERE id = ?1")?
        .execute(params![turn_id, turn_state, now_millis(), error])?;
    conn.prepare_cached(FINISH_MESSAGES)?
        .execute(params![turn_id, message_state, error])?;
    Ok(())
}

/// Conversations with open messages (index `inbound_open_by_lane`).
pub(super) const OPEN_LANES: &str = "SELECT phone_number_id, user, MIN(seq) AS first FROM inbound
    WHERE state IN ('pending', 'taken')
    GROUP BY phone_number_id, user ORDER BY first";

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

/// Remember the reply before sending it, so a resumed turn sends the same text and skips the
/// parts Meta already accepted. Saving twice keeps the first version.
pub(super) fn save_reply(
    conn: &Connection,
    turn_id: i64,
    parts: &[String],
) -> rusqlite::Result<Vec<ReplyPart>> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO reply_parts (turn_id, idx, text) VALUES (?1, ?2, ?3)",
    )?;
    for (idx, text) in parts.iter().enumerate() {
        insert.execute(params![turn_id, idx as i64, text])?;
    }
    load_reply(conn, turn_id).map(|r| r.unwrap_or_default())
}

pub(super) fn load_reply(
    conn: &Connection,
    turn_id: i64,
) -> rusqlite::Result<Option<Vec<ReplyPart>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, text, outbound_id FROM reply_parts WHERE turn_id = ?1 ORDER BY idx",
    )?;
    let parts = stmt
        .query_map(params![turn_id], |r| {
            Ok(ReplyPart {
                index: r.get::<_, i64>(0)? as usize,
                text: r.get(1)?,
                outbound_id: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(if parts.is_empty() { None } else { Some(parts) })
}

pub(super) fn mark_part_sent(
    conn: &Connection,
    turn_id: i64,
    index: usize,
    outbound_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reply_parts SET outbound_id = ?3, sent_at = ?4 WHERE turn_id = ?1 AND idx = ?2",
    )?
    .execute(params![turn_id, index as i64, outbound_id, now_millis()])?;
    Ok(())
}

pub(super) fn mark_part_failed(
    conn: &Connection,
    turn_id: i64,
    index: usize,
    error: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE reply_parts SET error = ?3 WHERE turn_id = ?1 AND idx = ?2")?
        .execute(params![turn_id, index as i64, error])?;
    Ok(())
}

/// Inbox depth and the age of the oldest unanswered message, for /metrics and alerts
/// (index `inbound_open_by_lane`).
pub(super) fn backlog(conn: &Connection) -> rusqlite::Result<(u64, Option<i64>)> {
    conn.prepare_cached(
        "SELECT COUNT(*), MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
    )?
    .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
}
