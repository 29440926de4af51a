//! The database as operator commands (`wagate inbox`, `history`, `retry`) see it beside a
//! running server: a short-lived connection of their own in another process (WAL lets it read
//! beside the server's writer), never creating the file. Reads take one snapshot; `requeue`
//! is one short `BEGIN IMMEDIATE` transaction, waiting a moment (busy timeout) for a commit in
//! progress. The reports and their SQL are `reports.rs`'s, shared with the server (the
//! console). With `--database` the same commands read PostgreSQL (`postgres/operator.rs`: one
//! snapshot transaction, a re-queue that locks the turn's row), beside any number of running
//! replicas.

use super::memory;
use super::postgres::operator::PgOperatorDb;
use super::postgres::{DatabaseUrl, DatabaseUrlError};
use super::reports::{read_inbox, requeue, InboxSnapshot, Requeue};
use super::{StoreError, DATABASE_FILE};
use crate::memory::MemoryEntry;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
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
