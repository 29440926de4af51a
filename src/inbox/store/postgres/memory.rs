//! Conversation memory on PostgreSQL (see `store/memory.rs`). A turn's entries (turn id > 0)
//! are written under the turn's conversation lease: a replica that lost the conversation
//! does not add its turn to the memory the new owner reads.

use super::parts::Flush;
use super::small_steps::delete_in_small_steps;
use super::PgStore;
use crate::inbox::store::StoreError;
use crate::memory::{MediaRef, MemoryEntry, MemoryRole};
use tokio_postgres::types::ToSql;

/// Purges delete in slices so no transaction holds a huge DELETE, resting between them
/// (`small_steps.rs`).
const PURGE_BATCH: i64 = 1_000;

/// A turn's memory entries as the insert statement takes them (`$4` the key, `$5`–`$9` the
/// columns), and the statement itself (fenced by `lease`, see `parts::fenced_sql`).
pub(super) struct MemoryRows {
    key: String,
    positions: Vec<i32>,
    roles: Vec<&'static str>,
    contents: Vec<String>,
    created: Vec<i64>,
    media: Vec<Option<String>>,
}

/// The insert of a turn's memory entries, for a statement with a `lease` CTE: rows already
/// stored for (key, turn, position) stay, so appending a resumed turn again stores nothing new.
pub(super) const INSERT_MEMORY: &str =
    "INSERT INTO memory (key, turn_id, position, role, content, created_at, media)
     SELECT $4::text, $1, e.position, e.role, e.content, e.created_at, e.media
     FROM unnest($5::int[], $6::text[], $7::text[], $8::bigint[], $9::text[])
          AS e(position, role, content, created_at, media)
     WHERE EXISTS (SELECT 1 FROM lease)
     ON CONFLICT (key, turn_id, position) DO NOTHING";

impl MemoryRows {
    fn of(key: String, entries: Vec<MemoryEntry>) -> MemoryRows {
        MemoryRows {
            key,
            positions: (0..entries.len() as i32).collect(),
            roles: entries.iter().map(|e| e.role.as_str()).collect(),
            media: entries
                .iter()
                .map(|e| {
                    (!e.media.is_empty())
                        .then(|| serde_json::to_string(&e.media).unwrap_or_default())
                })
                .collect(),
            created: entries.iter().map(|e| e.created_at).collect(),
            contents: entries.into_iter().map(|e| e.content).collect(),
        }
    }

    /// Parameters `$4`–`$9` of [`INSERT_MEMORY`].
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.key,
            &self.positions,
            &self.roles,
            &self.contents,
            &self.created,
            &self.media,
        ]
    }
}

impl PgStore {
    /// A turn's entries wait in this process for the statement that saves the turn's reply,
    /// which writes them too (one round trip and one commit less per message: BENCHMARKS.md,
    /// "One statement less"). Nothing is lost by the wait: the entries are bookkeeping that is
    /// not flushed on its own anyway (`parts::Flush`), and a turn that stops before its reply
    /// is saved runs again and appends them again. They are written on their own when the turn
    /// closes without a saved reply, or when this process reads the same memory first.
    pub(crate) async fn append_memory(
        &self,
        key: String,
        turn_id: i64,
        entries: Vec<MemoryEntry>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows = MemoryRows::of(key, entries);
        if turn_id > 0 {
            // As in the table, the first append of a turn is the one kept.
            self.deferred_memory().entry(turn_id).or_insert(rows);
            return Ok(());
        }
        self.write_memory(turn_id, &rows).await
    }

    /// The entries waiting for `turn_id`'s saved reply, taken.
    pub(super) fn take_deferred_memory(&self, turn_id: i64) -> Option<MemoryRows> {
        self.deferred_memory().remove(&turn_id)
    }

    /// Write what waits for `turn_id` now (the turn closes without a saved reply).
    pub(super) async fn write_deferred_memory(&self, turn_id: i64) -> Result<(), StoreError> {
        match self.take_deferred_memory(turn_id) {
            Some(rows) => self.write_memory(turn_id, &rows).await,
            None => Ok(()),
        }
    }

    fn deferred_memory(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, MemoryRows>> {
        self.inner
            .deferred_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn write_memory(&self, turn_id: i64, rows: &MemoryRows) -> Result<(), StoreError> {
        self.fenced_with(
            turn_id,
            INSERT_MEMORY,
            &rows.params(),
            Flush::WithNextFlushedCommit,
        )
        .await
        .map(|_| ())
    }

    pub(crate) async fn memory_window(
        &self,
        key: String,
        limit: usize,
        since: i64,
    ) -> Result<Vec<MemoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Entries of this memory still waiting for their turn's reply are written first: a
        // read sees every append this process made.
        let waiting: Vec<i64> = self
            .deferred_memory()
            .iter()
            .filter(|(_, rows)| rows.key == key)
            .map(|(turn, _)| *turn)
            .collect();
        for turn_id in waiting {
            match self.write_deferred_memory(turn_id).await {
                Ok(()) | Err(StoreError::LeaseLost { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, role, content, created_at, media FROM memory
                 WHERE key = $1 AND created_at >= $2
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .await
            .map_err(|e| self.error(e))?;
        let rows = client
            .query(&stmt, &[&key, &since, &limit])
            .await
            .map_err(|e| self.error(e))?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let role: String = row.get(1);
            let Some(role) = MemoryRole::parse(&role) else {
                tracing::warn!(
                    row_id = row.get::<_, i64>(0),
                    role,
                    "memory row with an unknown role skipped"
                );
                continue;
            };
            let media: Vec<MediaRef> = row
                .get::<_, Option<String>>(4)
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default();
            entries.push(MemoryEntry {
                role,
                content: row.get(2),
                created_at: row.get(3),
                media,
            });
        }
        Ok(entries)
    }

    pub(crate) async fn purge_memory(&self, before: i64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM memory WHERE id IN
                   (SELECT id FROM memory WHERE created_at < $1 LIMIT $2)",
            )
            .await
            .map_err(|e| self.error(e))?;
        let deleted = delete_in_small_steps(PURGE_BATCH as u64, || async {
            client.execute(&stmt, &[&before, &PURGE_BATCH]).await
        })
        .await
        .map_err(|e| self.error(e))?;
        Ok(deleted as usize)
    }
}
