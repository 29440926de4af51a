//! Hints to the other replicas sharing the store: the sending half of the wake-ups (the
//! listening half is [`Store::wake_ups`]). The dispatcher decides when to hint
//! (`inbox::dispatcher::wakeups`); the backend decides how: PostgreSQL sends a `NOTIFY`
//! (`postgres/hint.rs`); on SQLite one process owns the database, so there is nobody to tell.
//!
//! The same channel carries a second kind of hint: a conversation changed hands (take-over,
//! release) or its customer opted out or back in. The handoff service announces each change
//! it committed ([`Store::announce_conversation_change`]) and follows the others'
//! ([`Store::conversation_changed_elsewhere`]); it is heard on the dispatcher's listening
//! connection, not a second one.

use super::{Backend, Store, StoreError};
use crate::inbox::LaneKey;

impl Store {
    /// Tell the other replicas that work waits here that this one cannot start now. A hint
    /// only: a lost one delays the work until their next poll.
    pub async fn hint_work(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(db) => db.hint_work().await,
        }
    }

    /// Tell the other replicas that `lane` changed hands or opted out or back in (committed
    /// already). A hint only: they read the state again every 2 s anyway.
    pub async fn announce_conversation_change(&self, lane: &LaneKey) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(db) => db.announce_conversation_change(lane).await,
        }
    }

    /// Resolves when another replica announced a conversation change, or the listening
    /// connection was (re)opened (a change may have gone unheard); then again at the next one.
    /// Only while [`Store::wake_ups`] is listened to (the dispatcher does, with `--notify on`).
    /// Never on SQLite.
    pub async fn conversation_changed_elsewhere(&self) {
        match &self.backend {
            Backend::Sqlite(_) => std::future::pending().await,
            Backend::Postgres(db) => db.conversation_changed_elsewhere().await,
        }
    }
}
