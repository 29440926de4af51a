//! The blocking SQLite side of memory: schema and queries on one connection. Everything here
//! runs inside `spawn_blocking`; nothing in this file knows about async.

use super::{MemoryEntry, MemoryError, MemoryRole};
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::Duration;

/// The inbox writes the same file from its own connection: wait for its locks rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Purge deletes in slices so the inbox writer never waits long behind one huge DELETE.
pub(super) const PURGE_BATCH: usize = 1_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS memory (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL,
    turn_id     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (key, turn_id, position)
);
CREATE INDEX IF NOT EXISTS memory_key_created_at ON memory (key, created_at);
CREATE INDEX IF NOT EXISTS memory_created_at ON memory (created_at);
";

/// Opens (creating if missing) the database file and the memory table.
pub(super) fn open(path: &Path) -> Result<Connection, MemoryError> {
    let wrap = |source| MemoryError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(wrap)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
    // WAL lets the inbox and memory connections read while the other writes. `synchronous =
    // NORMAL` (this connection only) keeps commits cheap: in WAL mode it survives a process
    // crash and may lose only the last turns' memory on power loss, never corrupt the file.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(wrap)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(wrap)?;
    conn.execute_batch(SCHEMA).map_err(wrap)?;
    Ok(conn)
}

/// Stores entries at their positions; rows already stored for (key, turn_id, position) stay.
pub(super) fn append(
    conn: &mut Connection,
    key: &str,
    turn_id: i64,
    entries: &[MemoryEntry],
) -> Result<(), MemoryError> {
    // IMMEDIATE takes the write lock at BEGIN, waiting (busy timeout) while the inbox writer
    // holds it. A deferred transaction would read first and then fail at once with
    // SQLITE_BUSY_SNAPSHOT if the inbox committed in between: no busy handler can fix that.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO memory (key, turn_id, position, role, content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (position, entry) in entries.iter().enumerate() {
            insert.execute(params![
                key,
                turn_id,
                position as i64,
                entry.role.as_str(),
                entry.content,
                entry.created_at,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The newest `limit` entries of `key` created at or after `since`, oldest first.
pub(super) fn newest(
    conn: &Connection,
    key: &str,
    limit: usize,
    since: i64,
) -> Result<Vec<MemoryEntry>, MemoryError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Same-second entries keep insertion order through the rowid.
    let mut select = conn.prepare_cached(
        "SELECT id, role, content, created_at FROM memory
         WHERE key = ?1 AND created_at >= ?2
         ORDER BY created_at DESC, id DESC
         LIMIT ?3",
    )?;
    let rows = select.query_map(params![key, since, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (row_id, role, content, created_at) = row?;
        let role = MemoryRole::parse(&role).ok_or(MemoryError::UnknownRole { row_id, role })?;
        entries.push(MemoryEntry {
            role,
            content,
            created_at,
        });
    }
    entries.reverse();
    Ok(entries)
}

/// Deletes up to one batch of entries created before `before`; returns how many went. Fewer
/// than [`PURGE_BATCH`] means nothing expired is left.
pub(super) fn purge_batch(conn: &mut Connection, before: i64) -> Result<usize, MemoryError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let deleted = tx
        .prepare_cached(
            "DELETE FROM memory WHERE id IN
               (SELECT id FROM memory WHERE created_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before, PURGE_BATCH as i64])?;
    tx.commit()?;
    Ok(deleted)
}

/// How many entries `key` holds, expired or not (for tests and diagnostics).
#[cfg(test)]
pub(super) fn count(conn: &Connection, key: &str) -> Result<usize, MemoryError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM memory WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )?;
    Ok(n as usize)
}
