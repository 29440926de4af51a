//! Sliding-window conversation memory, kept by the inbox store in the same database: its
//! writes go through the store's writer thread (the database has one owner), its loads through
//! the store's reader.
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

pub use error::MemoryError;

use crate::inbox::store::{Durability, Store};
use crate::llm::ChatMessage;
use std::path::Path;
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MemoryRole::User => "user",
            MemoryRole::Assistant => "assistant",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MemoryRole::User),
            "assistant" => Some(MemoryRole::Assistant),
            _ => None,
        }
    }
}

/// One remembered message. Images are stored as a placeholder text plus where to fetch them
/// again ([`MediaRef`]), never as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    /// Who said it.
    pub role: MemoryRole,
    /// The text as the model saw it (after input guardrails) or as it was sent.
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The customer's images in this message, in order: a later turn may download the newest
    /// one again for a vision model (see `agent::runtime`), within Meta's media id lifetime.
    pub media: Vec<MediaRef>,
}

/// A customer's image as memory keeps it: the Graph API media id to download it again, and
/// what the webhook said about it. Never the bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaRef {
    /// The id for `GET /{media_id}`; Meta keeps an inbound media id for 7 days.
    pub media_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// After input guardrails, like the remembered text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// How long Meta keeps the media id of an inbound message retrievable (its developer
/// documentation: "Media IDs in webhooks expire after 7 days"); a remembered image older than
/// this is not downloaded again.
pub const MEDIA_ID_LIFETIME_SECS: i64 = 7 * 24 * 3600;

impl MemoryEntry {
    /// A user message remembered at `created_at` (unix seconds).
    pub fn user(content: impl Into<String>, created_at: i64) -> Self {
        MemoryEntry {
            role: MemoryRole::User,
            content: content.into(),
            created_at,
            media: Vec::new(),
        }
    }

    /// The same entry, remembering the customer's images `media`.
    pub fn with_media(mut self, media: Vec<MediaRef>) -> Self {
        self.media = media;
        self
    }

    /// An assistant reply remembered at `created_at` (unix seconds).
    pub fn assistant(content: impl Into<String>, created_at: i64) -> Self {
        MemoryEntry {
            role: MemoryRole::Assistant,
            content: content.into(),
            created_at,
            media: Vec::new(),
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

/// Conversation memory. Cheap to clone; all clones share the store.
#[derive(Clone)]
pub struct Memory {
    store: Store,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("path", &self.store.path())
            .finish()
    }
}

impl Memory {
    /// Memory kept by `store` (the server's, so memory writes join its group commits).
    pub fn new(store: Store) -> Memory {
        Memory { store }
    }

    /// For a process without a store yet (`wagate chat`, tests): opens the store of the
    /// directory holding `path`, which must be that directory's `wagate.db` (creating it and
    /// its tables if missing). A server passes its own store to [`Memory::new`] instead.
    pub fn open(path: &Path) -> Result<Memory, MemoryError> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let store = Store::open(dir, Durability::Full).map_err(|source| MemoryError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Memory { store })
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
        let since = oldest_kept(ttl_secs, now);
        Ok(self
            .store
            .memory_window(key.to_owned(), max_turns, since)
            .await?)
    }

    /// Stores the entries of one turn, in one commit. Idempotent: appending the same turn
    /// again (a turn resumed after a crash) stores nothing new.
    pub async fn append(
        &self,
        key: &str,
        turn_id: i64,
        entries: &[MemoryEntry],
    ) -> Result<(), MemoryError> {
        if entries.is_empty() {
            return Ok(());
        }
        Ok(self
            .store
            .append_memory(key.to_owned(), turn_id, entries.to_vec())
            .await?)
    }

    /// The newest `limit` messages of `key`, expired or not, oldest first.
    pub async fn history(&self, key: &str, limit: usize) -> Result<Vec<MemoryEntry>, MemoryError> {
        Ok(self
            .store
            .memory_window(key.to_owned(), limit, i64::MIN)
            .await?)
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
        Ok(self.store.purge_memory(oldest_kept(ttl_secs, now)).await?)
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

    #[cfg(test)]
    async fn count(&self, key: &str) -> usize {
        self.history(key, usize::MAX).await.expect("count").len()
    }
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
