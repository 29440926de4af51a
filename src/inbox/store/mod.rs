//! The inbox store: every acknowledged message, turn, reply part and delivery status, and the
//! one owner of the database. Two backends behind one [`Store`]:
//!
//! - SQLite in `--data` (the default, nothing to install): one writer thread owns the write
//!   connection. Callers send it commands; it takes every command waiting at that moment, runs
//!   them in ONE transaction and commits once (group commit), then answers each. So a burst of
//!   concurrent webhooks costs one fsync, not one each, and no SQLite call ever blocks the
//!   async runtime (`sqlite.rs`, `writer.rs`, and the files by concern).
//! - PostgreSQL (`--database postgres://...`), for several replicas on one database: a pool of
//!   connections, a transaction per webhook, conversations claimed with fenced leases
//!   (`postgres/`, whose module doc explains the leases and the wake-ups).
//!
//! The API (`api.rs`) speaks the domain (record, claim a turn, finish it, save a reply), never
//! SQL; every SQL statement of the product lives in this folder.

mod api;
mod checkpoint;
mod conversation_view;
mod conversations;
mod files;
mod intake;
mod job;
mod ledger;
mod lock;
mod memory;
mod operator;
mod opt_out;
mod outbox;
mod pace;
mod parts;
mod postgres;
mod reactions;
mod reader;
mod reports;
mod schema;
mod sqlite;
mod states;
mod turns;
mod types;
mod wake_ups;
mod writer;

pub use lock::{DataDirLock, LockError, LOCK_FILE};

use crate::inbox::{LaneKey, Turn};
pub use conversation_view::{ConversationRow, MessageRow};
pub use conversations::{
    Holder, HumanConversation, KeywordHandoff, ASKED_FOR_PERSON, CLOSED_AT_HANDOFF, HELD_FOR_PERSON,
};
pub use opt_out::{OptChange, OptSource, OptedOut, OPTED_OUT_BY_KEYWORD, WHILE_OPTED_OUT};
pub use outbox::OutboxItem;
pub use postgres::retention::{RetentionRun, RetentionSkipped};
pub use postgres::{
    state_payload, wake_payload, DatabaseUrl, DatabaseUrlError, WakeUp, WakeUps, WAKE_CHANNEL,
};
pub use reactions::{Reaction, REACTION_NOT_TO_AGENT, REACTION_REMOVED};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the database inside `--data`.
pub const DATABASE_FILE: &str = "wagate.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("the database would not accept writes: {0}")]
    NotWritable(String),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database commit failed: {0}")]
    Commit(String),
    #[error("cannot start the database writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("a database read did not finish: {0}")]
    Task(String),
    /// PostgreSQL cannot be reached (refused, timed out, pool exhausted): the webhook answers
    /// 503 and `/readyz` too. Names host, port and database, never the password.
    #[error("PostgreSQL at {target} is unreachable: {reason}")]
    Unreachable { target: String, reason: String },
    /// A statement failed on PostgreSQL (the server's message, with its SQLSTATE).
    #[error("PostgreSQL error: {0}")]
    Postgres(String),
    /// The schema could not be created or upgraded at start.
    #[error("cannot bring the PostgreSQL schema up to date (migration {version}): {reason}")]
    Migration { version: i32, reason: String },
    /// This replica no longer holds the conversation of `turn_id`: its lease expired and
    /// another replica took it over (a higher fence). The write was refused; the turn must
    /// stop and send nothing more. Never retried: the new owner answers.
    #[error("turn {turn_id}: this replica lost the conversation's lease to another replica")]
    LeaseLost { turn_id: i64 },
    /// The store would not mark part `key` `sending` (see [`SendRefusal`]): the part must not
    /// go out, nothing was written. Checked in the commit of the mark itself, so it holds for
    /// a take-over, an opt-out or an outbox claim committed by any replica.
    #[error("part of {key} not sent: {refusal}")]
    SendRefused { key: i64, refusal: SendRefusal },
}

impl StoreError {
    /// The turn's conversation belongs to another replica now: stop, send nothing more.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. })
    }

    /// Why the store refused to let a part go out, when that is this error.
    pub fn send_refusal(&self) -> Option<SendRefusal> {
        match self {
            StoreError::SendRefused { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }
}

pub use operator::{DatabaseLocation, OperatorDb};
pub use parts::{outbox_key, FirstPart, PartRef, SendRefusal, CONFIRM_WINDOW};
/// Tests elsewhere in the crate: a fresh PostgreSQL database per test.
#[cfg(test)]
pub(crate) use postgres::testdb;
pub use reports::{DeadLetterRow, InboxSnapshot, Requeue, TurnSummary, WaitingConversation};
use sqlite::Sqlite;
pub use states::{MessageState, TurnState};
pub use turns::MAX_MESSAGES_PER_TURN;
pub use types::{
    Backlog, Batch, InboundState, NewInbound, RecordOutcome, ReplyPart, StatusUpdate, TurnOutcome,
};

/// The inbox: one type for the whole product, cheap to clone, whichever database is behind it.
/// The dispatcher, responder, memory, handoff, console and ops commands never know which.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    identity: Arc<Identity>,
}

/// The two backends. Every method of the API (`api.rs`) is written once for each: a method
/// missing on one is a compile error, not a surprise at run time.
#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::PgStore),
}

/// What this open of the database is.
struct Identity {
    /// Random, made when the database was created; part of every send's callback data. On
    /// PostgreSQL it is the database's (one row shared by every replica), not the process's.
    database: String,
    /// Unix milliseconds of this open: for a process, its (re)start.
    opened_at: i64,
}

/// How hard each commit tries to reach the disk. `Full` (the default) survives power loss:
/// every commit is fsynced before anyone is told "done". `Normal` is an explicit opt-in for
/// disks where an fsync is slow: it survives a process crash (kill -9) but may lose the last
/// commits (already acknowledged to Meta) on power loss or an OS crash. (PostgreSQL: its own
/// `synchronous_commit` setting decides.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl Store {
    /// Open (creating if needed, see `files` for the modes) `<data_dir>/wagate.db` and start
    /// the writer thread.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        let db = sqlite::Sqlite::open(data_dir, durability)?;
        let identity = Arc::new(Identity {
            database: db.database.clone(),
            opened_at: now_millis(),
        });
        Ok(Store {
            backend: Backend::Sqlite(db),
            identity,
        })
    }

    /// Connect to PostgreSQL at `url` (`--database`), create or upgrade the schema (under an
    /// advisory lock: replicas starting together migrate once) and start this replica's lease
    /// heartbeat. Fails when PostgreSQL cannot be reached now, naming host, port and database.
    pub async fn open_postgres(url: &DatabaseUrl) -> Result<Store, StoreError> {
        let db = postgres::PgStore::open(url).await?;
        let identity = Arc::new(Identity {
            database: db.database_id().to_owned(),
            opened_at: now_millis(),
        });
        Ok(Store {
            backend: Backend::Postgres(db),
            identity,
        })
    }

    /// `--database` when given, else SQLite in `data_dir`.
    pub async fn open_configured(
        database: Option<&DatabaseUrl>,
        data_dir: &Path,
        durability: Durability,
    ) -> Result<Store, StoreError> {
        match database {
            Some(url) => Store::open_postgres(url).await,
            None => Store::open(data_dir, durability),
        }
    }

    /// Whether this store is PostgreSQL (several replicas may share it).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The database file; for PostgreSQL its URL without the password (for messages that
    /// name the database).
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite(db) => &db.path,
            Backend::Postgres(db) => db.location(),
        }
    }

    /// Record a webhook's content durably. Returns after the commit.
    pub async fn record(&self, batch: Batch) -> Result<RecordOutcome, StoreError> {
        self.record_and_claim(batch, Vec::new())
            .await
            .map(|(outcome, _)| outcome)
    }

    /// Record a webhook's content and, in the same commit, start a turn for each of `lanes`
    /// (idle conversations the dispatcher reserved) with its new messages to answer. Returns
    /// after the commit, with those turns; a lane gets none when nothing new arrived for it or
    /// when it has an interrupted turn (which its own claim resumes first), or (PostgreSQL)
    /// when another replica holds the conversation.
    pub async fn record_and_claim(
        &self,
        batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError> {
        // A huge body (Meta allows megabytes: tens of thousands of messages) is recorded in
        // bounded slices, each its own commit, so no request holds the writer (or a
        // PostgreSQL transaction) for long; the caller still hears back only after the last
        // slice is committed. The turns are claimed with the last slice, so they see every
        // message of the body. A redelivery after a failed slice finds the committed ones as
        // duplicates.
        let mut slices = intake::slice(batch, intake::INTAKE_SLICE);
        let last = slices.pop().unwrap_or_default();
        let mut outcome = RecordOutcome::default();
        for slice in slices {
            let (recorded, _) = self.record_slice(slice, Vec::new()).await?;
            outcome.merge(recorded);
        }
        let (recorded, turns) = self.record_slice(last, lanes).await?;
        outcome.merge(recorded);
        Ok((outcome, turns))
    }

    /// Save a turn's reply parts before sending them; returns the saved parts (the earlier
    /// version when the turn had already saved one).
    pub async fn save_reply(
        &self,
        turn_id: i64,
        parts: Vec<String>,
    ) -> Result<Vec<ReplyPart>, StoreError> {
        let messages = parts
            .into_iter()
            .map(crate::whatsapp::graph::OutgoingMessage::text)
            .collect();
        self.save_reply_messages(turn_id, messages).await
    }

    /// The callback data a send of this part carries (`biz_opaque_callback_data`).
    pub fn part_ref(&self, turn_id: i64, index: usize) -> PartRef {
        PartRef {
            database: self.identity.database.clone(),
            turn_id,
            index,
        }
    }

    /// Unix milliseconds of this open of the database (the process's start).
    pub fn opened_at_millis(&self) -> i64 {
        self.identity.opened_at
    }

    /// From when (unix ms) a part of `key` found `sending` waits for its status notification
    /// before it is sent again: the later of this process's start and, on PostgreSQL, the
    /// moment this replica took the conversation over from another.
    pub async fn confirm_window_start(&self, key: i64) -> i64 {
        let taken_over = match &self.backend {
            Backend::Sqlite(db) => db.confirm_window_start(key).await,
            Backend::Postgres(db) => db.confirm_window_start(key).await,
        };
        taken_over.map_or(self.identity.opened_at, |at| {
            at.max(self.identity.opened_at)
        })
    }
}

#[cfg(test)]
impl Store {
    /// Tests: run `op` on the SQLite writer.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        op: impl FnMut(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.call(op).await,
            Backend::Postgres(_) => panic!("an SQLite test helper used on PostgreSQL"),
        }
    }

    /// Tests: the PostgreSQL backend.
    pub(crate) fn postgres(&self) -> &postgres::PgStore {
        match &self.backend {
            Backend::Postgres(db) => db,
            Backend::Sqlite(_) => panic!("a PostgreSQL test helper used on SQLite"),
        }
    }
}

#[cfg(test)]
#[macro_use]
mod both_backends;
#[cfg(test)]
mod conversation_tests;
#[cfg(test)]
mod intake_tests;
#[cfg(test)]
mod native_tests;
#[cfg(test)]
mod opt_out_tests;
#[cfg(test)]
mod parts_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod send_fence_tests;
#[cfg(test)]
mod tests;

/// The store's clock: unix milliseconds, for the times it records (both backends).
fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
