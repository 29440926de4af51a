//! Conversation memory on PostgreSQL (see `store/memory.rs`). A turn's entries (turn id > 0)
//! are written under the turn's conversation lease: a replica that lost the conversation
//! does not add its turn to the memory the new owner reads.

use super::parts::Flush;
use super::PgStore;
use crate::inbox::store::StoreError;
use crate::memory::{MediaRef, MemoryEntry, MemoryRole};

/// Purges delete in slices so no transaction holds a huge DELETE.
const PURGE_BATCH: i64 = 1_000;

impl PgStore {
    pub(crate) async fn append_memory(
        &self,
        key: String,
        turn_id: i64,
        entries: Vec<MemoryEntry>,
    ) -> Result<(), StoreError> {
        let mut positions = Vec::with_capacity(entries.len());
        let mut roles = Vec::with_capacity(entries.len());
        let mut contents = Vec::with_capacity(entries.len());
        let mut created = Vec::with_capacity(entries.len());
        let mut media: Vec<Option<String>> = Vec::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            positions.push(position as i32);
            roles.push(entry.role.as_str());
            contents.push(entry.content.as_str());
            created.push(entry.created_at);
            media.push(
                (!entry.media.is_empty())
                    .then(|| serde_json::to_string(&entry.media).unwrap_or_default()),
            );
        }
        // Rows already stored for (key, turn, position) stay: appending a resumed turn again
        // stores nothing new. Not flushed on its own (`parts::Flush`): lost to a PostgreSQL
        // crash before any part went out, the turn runs again and appends it again.
        self.fenced_with(
            turn_id,
            "INSERT INTO memory (key, turn_id, position, role, content, created_at, media)
             SELECT $4::text, $1, e.position, e.role, e.content, e.created_at, e.media
             FROM unnest($5::int[], $6::text[], $7::text[], $8::bigint[], $9::text[])
                  AS e(position, role, content, created_at, media)
             WHERE EXISTS (SELECT 1 FROM lease)
             ON CONFLICT (key, turn_id, position) DO NOTHING",
            &[&key, &positions, &roles, &contents, &created, &media],
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
        let mut total = 0;
        loop {
            let deleted = client
                .execute(&stmt, &[&before, &PURGE_BATCH])
                .await
                .map_err(|e| self.error(e))?;
            total += deleted as usize;
            if (deleted as i64) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}
