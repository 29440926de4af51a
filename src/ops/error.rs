//! What can go wrong in an operator command, and the exit code each case gives scripts.

use std::path::PathBuf;

/// An operator command failed. Never carries message text, phone numbers or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No database file where `--data` points (or no wagate schema where `--database` does).
    #[error(
        "no database at {}: point --data (or WAGATE_DATA) at the directory `wagate serve` uses, \
         or --database (WAGATE_DATABASE_URL) at the PostgreSQL database its replicas use",
        path.display()
    )]
    DatabaseMissing { path: PathBuf },
    /// `--database` is not a PostgreSQL URL (the message never shows the password).
    #[error("{0}")]
    DatabaseUrl(#[from] crate::inbox::store::DatabaseUrlError),
    /// The file exists but could not be opened.
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed (locked longer than the busy timeout, disk full, ...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `wagate retry ID` with an id the inbox does not know.
    #[error("no turn {0} in the inbox (`wagate inbox` lists the failed turns and their ids)")]
    TurnNotFound(i64),
    /// `wagate retry ID` on a turn that is not failed.
    #[error("turn {id} is {state}, not failed: only failed turns can be retried")]
    TurnNotFailed { id: i64, state: String },
    /// The failed turn has no failed messages left to answer.
    #[error("turn {0} has no failed messages to re-queue")]
    NothingToRequeue(i64),
    /// Meta already accepted part of the turn's reply; re-queuing would answer again.
    #[error(
        "turn {id} already delivered {sent} of {total} reply part(s): the customer got part of the \
         answer, and a retry writes a whole new one. Run again with --force to re-queue anyway"
    )]
    PartlyAnswered { id: i64, sent: usize, total: usize },
    /// `wagate history` found nothing under the key.
    #[error("no remembered messages under {0} (wrong number, an agent without memory, or expired by its ttl)")]
    NoHistory(String),
    /// `wagate history` without a phone number or `--key`.
    #[error("give a phone number or --key")]
    NoKey,
    /// Any other store failure.
    #[error("{0}")]
    Store(crate::inbox::StoreError),
    /// A JSON rendering failed (should not happen with our own types).
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<crate::inbox::StoreError> for OpsError {
    fn from(e: crate::inbox::StoreError) -> Self {
        use crate::inbox::StoreError;
        match e {
            StoreError::Missing { path } => OpsError::DatabaseMissing { path },
            StoreError::Open { path, source } => OpsError::Open { path, source },
            StoreError::Sqlite(e) => OpsError::Sqlite(e),
            other => OpsError::Store(other),
        }
    }
}

impl OpsError {
    /// The process exit code: 2 when there is no database (wrong `--data` or `--database`),
    /// 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::DatabaseMissing { .. } | OpsError::DatabaseUrl(_) => 2,
            _ => 1,
        }
    }
}
