//! Sliding-window conversation memory in SQLite, in the same database file as the inbox.
//!
//! Each conversation has a key (`wa_<phone>`, `chat_<name>`); every user and assistant message
//! of a turn is appended under it. A turn loads the newest `max_turns` messages that are no
//! older than the agent's `ttl`. Rows older than the ttl are purged in the background.
//!
//! TTL semantics: `ttl_secs == 0` means "never expires" (for both loading and purging). Because
//! the key is per user, not per agent (contract: `wa_<phone>`), several agents can share a key
//! and purging cannot be per agent: the purger deletes with the *longest* ttl across agents
//! ([`purge_ttl`]), and each load still applies its own agent's ttl.

mod error;
mod sqlite;

pub use error::MemoryError;

use crate::llm::ChatMessage;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The memory key of a WhatsApp user (`wa_<phone>`).
pub fn key_for_whatsapp(phone: &str) -> String {
    format!("wa_{phone}")
}

/// The memory key of a terminal chat session (`chat_<name>`).
pub fn key_for_chat(name: &str) -> String {
    format!("chat_{name}")
}

/// The ttl the background purger should use for a set of agents' ttls: the longest, or 0
/// (never purge) when any agent keeps memory forever or there are no agents with memory.
pub fn purge_ttl(ttls: impl IntoIterator<Item = u64>) -> u64 {
    let mut longest = 0;
    for ttl in ttls {
        if ttl == 0 {
            return 0;
        }
        longest = longest.max(ttl);
    }
    longest
}

/// Who said a remembered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRole {
    User,
    Assistant,
}

impl MemoryRole {
    fn as_str(self) -> &'static str {
        match self {
            MemoryRole::User => "user",
            MemoryRole::Assistant => "assistant",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MemoryRole::User),
            "assistant" => Some(MemoryRole::Assistant),
            _ => None,
        }
    }
}

/// One remembered message. Images are stored as a placeholder text, never as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    /// Who said it.
    pub role: MemoryRole,
    /// The text as the model saw it (after input guardrails) or as it was sent.
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl MemoryEntry {
    /// A user message remembered at `created_at` (unix seconds).
    pub fn user(content: impl Into<String>, created_at: i64) -> Self {
        MemoryEntry {
            role: MemoryRole::User,
            content: content.into(),
            created_at,
        }
    }

    /// An assistant reply remembered at `created_at` (unix seconds).
    pub fn assistant(content: impl Into<String>, created_at: i64) -> Self {
        MemoryEntry {
            role: MemoryRole::Assistant,
            content: content.into(),
            created_at,
        }
    }

    /// The entry as a message in the model's history.
    pub fn to_chat_message(&self) -> ChatMessage {
        match self.role {
            MemoryRole::User => ChatMessage::user(self.content.clone()),
            MemoryRole::Assistant => ChatMessage::assistant(self.content.clone()),
        }
    }
}

/// The current time in unix seconds, as memory timestamps use.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Conversation memory. Cheap to clone; all clones share two connections: one for reads, so a
/// turn's memory load never queues behind a write waiting for the database lock, and one for
/// writes.
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: Mutex<Connection>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Memory {
    /// Opens the database file (creating it and the memory table if missing).
    pub fn open(path: &Path) -> Result<Memory, MemoryError> {
        let writer = sqlite::open(path)?;
        let reader = sqlite::open(path)?;
        Ok(Memory {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                reader: Mutex::new(reader),
                writer: Mutex::new(writer),
            }),
        })
    }

    /// The newest `max_turns` messages of `key` no older than `ttl_secs`, oldest first.
    pub async fn load(
        &self,
        key: &str,
        max_turns: usize,
        ttl_secs: u64,
    ) -> Result<Vec<MemoryEntry>, MemoryError> {
        self.load_at(key, max_turns, ttl_secs, unix_now()).await
    }

    /// [`Memory::load`] as seen at `now` (unix seconds).
    pub async fn load_at(
        &self,
        key: &str,
        max_turns: usize,
        ttl_secs: u64,
        now: i64,
    ) -> Result<Vec<MemoryEntry>, MemoryError> {
        let key = key.to_owned();
        let since = oldest_kept(ttl_secs, now);
        self.blocking(Use::Read, move |conn| {
            sqlite::newest(conn, &key, max_turns, since)
        })
        .await
    }

    /// Stores the entries of one turn, in one transaction. Idempotent: appending the same
    /// turn again (a turn resumed after a crash) stores nothing new.
    pub async fn append(
        &self,
        key: &str,
        turn_id: i64,
        entries: &[MemoryEntry],
    ) -> Result<(), MemoryError> {
        if entries.is_empty() {
            return Ok(());
        }
        let key = key.to_owned();
        let entries = entries.to_vec();
        self.blocking(Use::Write, move |conn| {
            sqlite::append(conn, &key, turn_id, &entries)
        })
        .await
    }

    /// The newest `limit` messages of `key`, expired or not, oldest first.
    pub async fn history(&self, key: &str, limit: usize) -> Result<Vec<MemoryEntry>, MemoryError> {
        let key = key.to_owned();
        self.blocking(Use::Read, move |conn| {
            sqlite::newest(conn, &key, limit, i64::MIN)
        })
        .await
    }

    /// Deletes every message older than `ttl_secs` (0: nothing expires); returns how many.
    pub async fn purge_expired(&self, ttl_secs: u64) -> Result<usize, MemoryError> {
        self.purge_expired_at(ttl_secs, unix_now()).await
    }

    /// [`Memory::purge_expired`] as seen at `now` (unix seconds).
    pub async fn purge_expired_at(&self, ttl_secs: u64, now: i64) -> Result<usize, MemoryError> {
        if ttl_secs == 0 {
            return Ok(0);
        }
        let before = oldest_kept(ttl_secs, now);
        // One batch per blocking call: loads and appends get the connection in between.
        let mut total = 0;
        loop {
            let deleted = self
                .blocking(Use::Write, move |conn| sqlite::purge_batch(conn, before))
                .await?;
            total += deleted;
            if deleted < sqlite::PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Purges expired messages now and then every `every`, until the handle is aborted.
    /// `ttl_secs` is usually [`purge_ttl`] over the loaded agents.
    pub fn spawn_purger(self, every: Duration, ttl_secs: u64) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.purge_expired(ttl_secs).await {
                    Ok(deleted) => tracing::debug!(deleted, "memory_purged"),
                    Err(error) => tracing::warn!(%error, "memory_purge_failed"),
                }
            }
        })
    }

    /// Runs `work` on the connection in a blocking thread; the lock never crosses an await.
    async fn blocking<T, F>(&self, usage: Use, work: F) -> Result<T, MemoryError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MemoryError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = match usage {
                Use::Read => &inner.reader,
                Use::Write => &inner.writer,
            };
            work(&mut lock(conn))
        })
        .await?
    }

    #[cfg(test)]
    fn count(&self, key: &str) -> usize {
        sqlite::count(&lock(&self.inner.reader), key).expect("count rows")
    }
}

/// Which connection a call takes.
#[derive(Clone, Copy)]
enum Use {
    Read,
    Write,
}

/// A panic inside a query cannot leave the connection half-used (rusqlite rolls back dropped
/// transactions), so a poisoned lock is still safe to use.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The oldest `created_at` still visible at `now` with a ttl (0: everything).
fn oldest_kept(ttl_secs: u64, now: i64) -> i64 {
    if ttl_secs == 0 {
        return i64::MIN;
    }
    now.saturating_sub(i64::try_from(ttl_secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
