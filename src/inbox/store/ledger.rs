//! SQLite's ledger of what happened beside the messages: delivery statuses, dead letters and
//! the backlog figures (messages are in `intake`, turns in `turns`, reply parts in `parts`).
//! Every function runs inside the writer's transaction, so callers compose them freely and
//! group commit stays one `COMMIT` per batch.

use super::{now_millis, parts, StatusUpdate};
use rusqlite::{params, Connection};

/// Statuses only move forward (sent < delivered < read < played) and `failed` is terminal,
/// because Meta delivers them out of order.
///
/// A status whose callback data names one of our reply parts also confirms that part as
/// accepted (see `parts`): that is how a part a crash left `sending` is settled.
pub(super) fn record_statuses(
    conn: &Connection,
    database: &str,
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
        if let Some(callback) = &s.callback_data {
            parts::confirm_from_status(conn, database, callback, &s.message_id)?;
        }
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

/// A dead letter gone: its body was retried (and recorded anew in the same commit).
pub(super) fn delete_dead_letter(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
        .execute(params![id])?;
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
