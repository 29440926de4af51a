//! Wake-ups between processes sharing the store (several replicas on PostgreSQL): whether the
//! store is shared, and the hints (`NOTIFY`/`LISTEN`) one replica sends the others when it
//! leaves work it cannot start. The dispatcher decides when; the store owns how.
//!
//! On SQLite only one process uses the database (the data directory's lock sees to that), so
//! there is nobody to hint: `shared` is false and the hints are a no-op.

use super::{Store, StoreError};
use tokio::sync::mpsc;

impl Store {
    /// Other processes may record and answer messages in this store (PostgreSQL).
    pub fn shared(&self) -> bool {
        false
    }

    /// Tell the other replicas that work waits here that this one cannot start now. A hint
    /// only: losing it delays the work until their next poll.
    pub async fn hint_work(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Hints from the other replicas, one `()` per burst (a full channel drops the extra:
    /// one sweep serves them all); `None` when nobody else shares the store.
    pub fn work_hints(&self) -> Option<mpsc::Receiver<()>> {
        None
    }
}
