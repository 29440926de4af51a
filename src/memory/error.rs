//! What can go wrong with conversation memory.

use std::path::PathBuf;

/// A memory operation failed. Never carries message text or phone numbers.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The database file could not be opened or prepared (schema, pragmas).
    #[error("cannot open memory database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed (locked for longer than the busy timeout, disk full, ...).
    #[error("memory database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not have a shape this version understands.
    #[error("memory row {row_id} has an unknown role {role:?}")]
    UnknownRole { row_id: i64, role: String },
    /// The blocking task running the query panicked or was cancelled.
    #[error("memory task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}
