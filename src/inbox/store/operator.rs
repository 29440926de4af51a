//! The database as operator commands (`wagate inbox`, `history`, `retry`) see it beside a
//! running server: a short-lived connection of their own in another process (WAL lets it read
//! beside the server's writer), never creating the file. Reads take one snapshot; `requeue`
//! is one short `BEGIN IMMEDIATE` transaction, waiting a moment (busy timeout) for a commit in
//! progress. The SQL stays here, with the rest of the store's. With `--database` the same
//! commands read PostgreSQL (`postgres/operator.rs`: one snapshot transaction, a re-queue that
//! locks the turn's row), beside any number of running replicas.

use super::memory;
use super::postgres::operator::PgOperatorDb;
use super::postgres::{DatabaseUrl, DatabaseUrlError};
use super::states::{MessageState, TurnState};
use super::{StoreError, DATABASE_FILE};
use crate::memory::MemoryEntry;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command waits for the server's writer to release a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where operator commands find the database: `--database URL` when given, else the SQLite
/// file in `--data`.
#[derive(Debug, Clone)]
// One per operator command, built once: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum DatabaseLocation {
    DataDir(PathBuf),
    Postgres(Box<DatabaseUrl>),
}

impl From<&Path> for DatabaseLocation {
    fn from(data_dir: &Path) -> Self {
        DatabaseLocation::DataDir(data_dir.to_path_buf())
    }
}

impl DatabaseLocation {
    /// `--database` when given (and not blank), else `--data`. A URL that is not PostgreSQL's
    /// is refused with what to do, never echoing the password.
    pub fn parse(database: Option<&str>, data_dir: &Path) -> Result<Self, DatabaseUrlError> {
        match database.map(str::trim).filter(|d| !d.is_empty()) {
            Some(url) => Ok(DatabaseLocation::Postgres(Box::new(url.parse()?))),
            None => Ok(DatabaseLocation::DataDir(data_dir.to_path_buf())),
        }
    }
}

/// An operator's connection to `<data_dir>/wagate.db`, or to PostgreSQL.
pub struct OperatorDb {
    backend: OperatorBackend,
    path: PathBuf,
}

enum OperatorBackend {
    Sqlite(Connection),
    Postgres(Box<PgOperatorDb>),
}

/// The inbox at one moment, as stored (numbers unmasked, times in unix milliseconds).
#[derive(Debug, Default)]
pub struct InboxSnapshot {
    /// Messages by state.
    pub messages: BTreeMap<String, i64>,
    /// Turns by state.
    pub turns: BTreeMap<String, i64>,
    pub dead_letters: i64,
    /// When the oldest message not yet answered (pending or taken) arrived.
    pub oldest_unanswered_at: Option<i64>,
    /// Skipped messages by reason (most frequent first).
    pub skipped: Vec<(String, i64)>,
    /// Conversations with pending messages, oldest first.
    pub waiting: Vec<WaitingConversation>,
    /// Running and failed turns (every turn when asked), newest first.
    pub turns_list: Vec<TurnSummary>,
    /// The newest dead letters.
    pub dead_letter_list: Vec<DeadLetterRow>,
}

#[derive(Debug)]
pub struct WaitingConversation {
    pub phone_number_id: String,
    pub user: String,
    pub messages: i64,
    pub oldest_received_at: i64,
}

#[derive(Debug)]
pub struct TurnSummary {
    pub id: i64,
    pub phone_number_id: String,
    pub user: String,
    pub attempts: i64,
    /// The stored state (a state this version does not know is shown as stored).
    pub state: String,
    pub started_at: i64,
    pub error: Option<String>,
    pub messages: i64,
    pub reply_parts: i64,
    pub reply_parts_sent: i64,
}

#[derive(Debug)]
pub struct DeadLetterRow {
    pub id: i64,
    pub received_at: i64,
    pub reason: String,
    pub body: String,
}

/// What `requeue` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// The failed turn's messages are pending again; the turn is `requeued`.
    Done {
        messages: usize,
        parts_already_sent: usize,
    },
    NotFound,
    /// Only failed turns can be re-queued.
    NotFailed(String),
    /// Meta accepted part of the reply; re-queuing needs `force`.
    PartlyAnswered {
        sent: usize,
        total: usize,
    },
    /// The failed turn has no failed messages left.
    NothingToRequeue,
}

impl OperatorDb {
    /// The database at `location`: read-only unless `write` (for `requeue`). PostgreSQL is
    /// read and written the same way (its transactions keep a command beside the replicas).
    pub fn open_at(location: &DatabaseLocation, write: bool) -> Result<OperatorDb, StoreError> {
        match location {
            DatabaseLocation::DataDir(dir) if write => Self::open_read_write(dir),
            DatabaseLocation::DataDir(dir) => Self::open_read_only(dir),
            DatabaseLocation::Postgres(url) => {
                let db = PgOperatorDb::open(url)?;
                Ok(OperatorDb {
                    path: db.location().to_path_buf(),
                    backend: OperatorBackend::Postgres(Box::new(db)),
                })
            }
        }
    }

    /// Read-only; `StoreError::Missing` when there is no database there.
    pub fn open_read_only(data_dir: &Path) -> Result<OperatorDb, StoreError> {
        Self::open(
            data_dir,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }

    /// For a short write (`requeue`).
    pub fn open_read_write(data_dir: &Path) -> Result<OperatorDb, StoreError> {
        let db = Self::open(
            data_dir,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The operator's change must survive a power cut as the server's own commits do.
        if let OperatorBackend::Sqlite(conn) = &db.backend {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        Ok(db)
    }

    fn open(data_dir: &Path, flags: OpenFlags) -> Result<OperatorDb, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        if !path.is_file() {
            return Err(StoreError::Missing { path });
        }
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        Ok(OperatorDb {
            backend: OperatorBackend::Sqlite(conn),
            path,
        })
    }

    /// The database file; for PostgreSQL its URL without the password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn has_table(conn: &Connection, table: &str) -> Result<bool, StoreError> {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The inbox in one snapshot: at most `limit` rows per list; every turn when `all`, else
    /// the running and failed ones. A file made by `wagate chat` alone (memory only) gives an
    /// empty snapshot.
    pub fn inbox(&self, limit: usize, all: bool) -> Result<InboxSnapshot, StoreError> {
        let conn = match &self.backend {
            OperatorBackend::Sqlite(conn) => conn,
            OperatorBackend::Postgres(db) => return db.inbox(limit, all),
        };
        if !Self::has_table(conn, "inbound")? {
            return Ok(InboxSnapshot::default());
        }
        conn.execute_batch("BEGIN")?;
        let snapshot = read_inbox(conn, limit, all);
        let _ = conn.execute_batch("COMMIT");
        Ok(snapshot?)
    }

    /// The newest `limit` messages remembered under `key`, oldest first, expired or not; `None`
    /// when the database has no memory at all.
    pub fn history(&self, key: &str, limit: usize) -> Result<Option<Vec<MemoryEntry>>, StoreError> {
        let conn = match &self.backend {
            OperatorBackend::Sqlite(conn) => conn,
            OperatorBackend::Postgres(db) => return db.history(key, limit).map(Some),
        };
        if !Self::has_table(conn, "memory")? {
            return Ok(None);
        }
        Ok(Some(memory::newest(conn, key, limit, i64::MIN)?))
    }

    /// The business numbers `user` is opted out of: (phone_number_id, unix ms since, source).
    /// Empty for a database from before opt-out.
    pub fn opted_out_of(&self, user: &str) -> Result<Vec<(String, i64, String)>, StoreError> {
        let conn = match &self.backend {
            OperatorBackend::Sqlite(conn) => conn,
            OperatorBackend::Postgres(db) => return db.opted_out_of(user),
        };
        let has_column: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('conversations') WHERE name = 'opted_out'",
            [],
            |r| r.get(0),
        )?;
        if !has_column {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT phone_number_id, COALESCE(opted_out_at, since), COALESCE(opt_source, 'keyword')
             FROM conversations WHERE user = ?1 AND opted_out <> 0 ORDER BY phone_number_id",
        )?;
        let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Put failed turn `turn_id`'s messages back to pending, so the next claim of the
    /// conversation answers them in a new turn; the turn becomes `requeued` and keeps its reply
    /// parts (the record of what was, or was not, sent). Refused when Meta accepted part of its
    /// reply, unless `force`.
    pub fn requeue(&mut self, turn_id: i64, force: bool) -> Result<Requeue, StoreError> {
        let conn = match &mut self.backend {
            OperatorBackend::Sqlite(conn) => conn,
            OperatorBackend::Postgres(db) => return db.requeue(turn_id, force),
        };
        // IMMEDIATE takes the write lock up front: the check and the change see the same state.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = requeue(&tx, turn_id, force)?;
        tx.commit()?;
        Ok(done)
    }
}

/// The inbox in one snapshot (the caller holds a read transaction): at most `limit` rows per
/// list; every turn when `all`, else the running and failed ones.
pub(super) fn read_inbox(
    conn: &Connection,
    limit: usize,
    all: bool,
) -> rusqlite::Result<InboxSnapshot> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut snapshot = InboxSnapshot {
        messages: counts(conn, "SELECT state, COUNT(*) FROM inbound GROUP BY state")?,
        turns: counts(conn, "SELECT state, COUNT(*) FROM turns GROUP BY state")?,
        dead_letters: conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?,
        oldest_unanswered_at: conn.query_row(
            "SELECT MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
            [],
            |r| r.get(0),
        )?,
        ..InboxSnapshot::default()
    };

    let mut stmt = conn.prepare(
        "SELECT COALESCE(note, '(no reason recorded)'), COUNT(*) FROM inbound
         WHERE state = ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    snapshot.skipped = stmt
        .query_map(params![MessageState::Skipped.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(
        "SELECT phone_number_id, user, COUNT(*), MIN(received_at), MIN(seq) FROM inbound
         WHERE state = 'pending' GROUP BY phone_number_id, user ORDER BY 5 LIMIT ?1",
    )?;
    snapshot.waiting = stmt
        .query_map(params![limit], |r| {
            Ok(WaitingConversation {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
                messages: r.get(2)?,
                oldest_received_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;

    // `?2 = 1`: every turn; else the running and failed ones.
    let mut stmt = conn.prepare(
        "SELECT t.id, t.phone_number_id, t.user, t.attempts, t.state, t.started_at, t.error,
                (SELECT COUNT(*) FROM inbound i WHERE i.turn_id = t.id),
                (SELECT COUNT(*) FROM reply_parts p WHERE p.turn_id = t.id),
                (SELECT COUNT(p.outbound_id) FROM reply_parts p WHERE p.turn_id = t.id)
         FROM turns t WHERE ?2 = 1 OR t.state IN (?3, ?4) ORDER BY t.id DESC LIMIT ?1",
    )?;
    let args = params![
        limit,
        all,
        TurnState::Running.as_str(),
        TurnState::Failed.as_str()
    ];
    snapshot.turns_list = stmt
        .query_map(args, |r| {
            Ok(TurnSummary {
                id: r.get(0)?,
                phone_number_id: r.get(1)?,
                user: r.get(2)?,
                attempts: r.get(3)?,
                state: r.get(4)?,
                started_at: r.get(5)?,
                error: r.get(6)?,
                messages: r.get(7)?,
                reply_parts: r.get(8)?,
                reply_parts_sent: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(
        "SELECT id, received_at, reason, body FROM dead_letters ORDER BY id DESC LIMIT ?1",
    )?;
    snapshot.dead_letter_list = stmt
        .query_map(params![limit], |r| {
            Ok(DeadLetterRow {
                id: r.get(0)?,
                received_at: r.get(1)?,
                reason: r.get(2)?,
                body: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(snapshot)
}

/// Put failed turn `turn_id`'s messages back to pending (see [`OperatorDb::requeue`]), inside
/// the caller's write transaction: the CLI's own, or the server's writer.
pub(super) fn requeue(conn: &Connection, turn_id: i64, force: bool) -> rusqlite::Result<Requeue> {
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM turns WHERE id = ?1",
            params![turn_id],
            |r| r.get(0),
        )
        .optional()?;
    match state.as_deref().map(|s| (s, TurnState::parse(s))) {
        None => return Ok(Requeue::NotFound),
        Some((_, Some(TurnState::Failed))) => {}
        Some((other, _)) => return Ok(Requeue::NotFailed(other.to_string())),
    }
    let (total, sent): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COUNT(outbound_id) FROM reply_parts WHERE turn_id = ?1",
        params![turn_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if sent > 0 && !force {
        return Ok(Requeue::PartlyAnswered {
            sent: sent as usize,
            total: total as usize,
        });
    }
    let messages = conn.execute(
        "UPDATE inbound SET state = ?2, note = NULL WHERE turn_id = ?1 AND state = ?3",
        params![
            turn_id,
            MessageState::Pending.as_str(),
            MessageState::Failed.as_str()
        ],
    )?;
    if messages == 0 {
        return Ok(Requeue::NothingToRequeue);
    }
    conn.execute(
        "UPDATE turns SET state = ?2 WHERE id = ?1",
        params![turn_id, TurnState::Requeued.as_str()],
    )?;
    Ok(Requeue::Done {
        messages,
        parts_already_sent: sent as usize,
    })
}

fn counts(conn: &Connection, sql: &str) -> rusqlite::Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.collect()
}

/// The same operator reports and actions from inside the server: reads on the store's read
/// connection, the re-queue through its writer (the one owner of writes), never a connection
/// of their own.
impl super::Sqlite {
    /// As [`OperatorDb::inbox`].
    pub(super) async fn inbox_snapshot(
        &self,
        limit: usize,
        all: bool,
    ) -> Result<InboxSnapshot, StoreError> {
        self.reader
            .read(move |conn| {
                // One read transaction: the counts and the lists agree.
                conn.execute_batch("BEGIN")?;
                let snapshot = read_inbox(conn, limit, all);
                let _ = conn.execute_batch("COMMIT");
                snapshot
            })
            .await
    }

    /// As [`OperatorDb::requeue`].
    pub(super) async fn requeue_turn(
        &self,
        turn_id: i64,
        force: bool,
    ) -> Result<Requeue, StoreError> {
        self.call(move |conn| requeue(conn, turn_id, force)).await
    }

    /// Dead letter `id` with its body; `None` when there is none (never was, or retried).
    pub(super) async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError> {
        self.reader
            .read(move |conn| {
                conn.query_row(
                    "SELECT id, received_at, reason, body FROM dead_letters WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(DeadLetterRow {
                            id: r.get(0)?,
                            received_at: r.get(1)?,
                            reason: r.get(2)?,
                            body: r.get(3)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }
}
