//! Conversation memory's table (`memory`): the sliding window each agent turn loads and appends
//! to. Its SQL lives here so the store stays the database's one owner: appends and purges run
//! on the writer thread like every other write (one connection, no "database is locked" between
//! two writers), loads on the store's reader.

use crate::memory::{MediaRef, MemoryEntry, MemoryRole};
use rusqlite::{params, Connection};

/// Purges delete in slices so no writer batch holds a huge DELETE.
pub(super) const PURGE_BATCH: usize = 1_000;

pub(super) const SCHEMA: &str = "
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

/// Stores entries at their positions; rows already stored for (key, turn_id, position) stay,
/// so appending a resumed turn again stores nothing new.
pub(super) fn append(
    conn: &Connection,
    key: &str,
    turn_id: i64,
    entries: &[MemoryEntry],
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO memory (key, turn_id, position, role, content, created_at, media)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (position, entry) in entries.iter().enumerate() {
        // Ids and metadata only (the `media` column, added by `schema`); NULL without images.
        let media = (!entry.media.is_empty())
            .then(|| serde_json::to_string(&entry.media).unwrap_or_default());
        insert.execute(params![
            key,
            turn_id,
            position as i64,
            entry.role.as_str(),
            entry.content,
            entry.created_at,
            media,
        ])?;
    }
    Ok(())
}

/// The newest `limit` entries of `key` created at or after `since`, oldest first. A row with a
/// role this version does not know is skipped with a warning (the CHECK makes it impossible
/// unless someone edited the file).
pub(super) fn newest(
    conn: &Connection,
    key: &str,
    limit: usize,
    since: i64,
) -> rusqlite::Result<Vec<MemoryEntry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Same-second entries keep insertion order through the rowid.
    let mut select = conn.prepare_cached(
        "SELECT id, role, content, created_at, media FROM memory
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
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (row_id, role, content, created_at, media) = row?;
        let Some(role) = MemoryRole::parse(&role) else {
            tracing::warn!(row_id, role, "memory row with an unknown role skipped");
            continue;
        };
        // A value this version cannot read only costs the re-download, never the message.
        let media: Vec<MediaRef> = media
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default();
        entries.push(MemoryEntry {
            role,
            content,
            created_at,
            media,
        });
    }
    entries.reverse();
    Ok(entries)
}

/// Deletes up to one slice of entries created before `before`; returns how many went. Fewer
/// than [`PURGE_BATCH`] means nothing expired is left.
pub(super) fn purge_batch(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM memory WHERE id IN
           (SELECT id FROM memory WHERE created_at < ?1 LIMIT ?2)",
    )?
    .execute(params![before, PURGE_BATCH as i64])
}
