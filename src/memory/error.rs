//! What can go wrong with conversation memory.

use crate::inbox::StoreError;
use std::path::PathBuf;

/// A memory operation failed. Never carries message text or phone numbers.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The database could not be opened or prepared (`wagate chat`, tests).
    #[error("cannot open memory database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// The store could not read or write memory (disk full, writer stopped, ...).
    #[error("memory: {0}")]
    Store(#[from] StoreError),
}
