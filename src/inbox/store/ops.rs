//! The SQL behind statuses, dead letters, replies and the backlog (messages are in `intake`,
//! turns in `turns`). Every function runs inside the writer's transaction, so callers compose
//! them freely and group commit stays one `COMMIT` per batch.

use super::{ReplyPart, StatusUpdate};
use rusqlite::{params, Connection};

pub(super) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Statuses only move forward (sent < delivered < read < played) and `failed` is terminal,
/// because Meta delivers them out of order.
pub(super) fn record_statuses(
    conn: &Connection,
    statuses: &[StatusUpdate],
) -> rusqlite::Result<()> {
    if statuses.is_empty() {
        return Ok(());
    }
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
