//! PRE-MERGE SHIM (replaced by pg's `is_shared`/`wake_ups` when `pg` is merged): the SQLite
//! answers of the wake-up API, so this branch builds before the PostgreSQL backend lands.

use super::{Store, StoreError};

/// Hints from other processes; on SQLite none ever come.
pub struct WakeUps;

impl WakeUps {
    pub async fn next(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

impl Store {
    pub fn is_shared(&self) -> bool {
        false
    }

    pub async fn wake_ups(&self) -> Result<WakeUps, StoreError> {
        Ok(WakeUps)
    }

    pub async fn hint_work(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
