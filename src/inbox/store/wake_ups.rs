//! Hints to the other replicas sharing the store: the sending half of the wake-ups (the
//! listening half is [`Store::wake_ups`]). The dispatcher decides when to hint
//! (`inbox::dispatcher::wakeups`); the backend decides how: PostgreSQL sends a `NOTIFY`
//! (`postgres/hint.rs`); on SQLite one process owns the database, so there is nobody to tell.

use super::{Backend, Store, StoreError};

impl Store {
    /// Tell the other replicas that work waits here that this one cannot start now. A hint
    /// only: a lost one delays the work until their next poll.
    pub async fn hint_work(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(db) => db.hint_work().await,
        }
    }
}
