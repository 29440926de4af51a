//! The writer thread and its group commit.
//!
//! A job is a closure over the write connection. The thread takes every job waiting at that
//! moment (up to `MAX_BATCH`), runs each in its own savepoint inside one transaction, commits
//! once, and only then tells each caller its result: nobody hears "done" before the data is on
//! disk.

use super::{schema, Durability, StoreError};
use rusqlite::Connection;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Tells the caller its result once the commit is known (`Some(error)` if it failed).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;
/// Runs against the connection inside the batch transaction, or is told the batch could not start.
pub(super) type Job = Box<dyn FnOnce(Result<&Connection, &str>) -> Deliver + Send>;

/// Most jobs one transaction takes; bounds the wait of the first job in a huge burst.
const MAX_BATCH: usize = 1024;

pub(super) fn spawn(
    path: &Path,
    durability: Durability,
) -> Result<mpsc::UnboundedSender<Job>, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    schema::configure(&conn, synchronous).map_err(open_err)?;
    conn.execute_batch(schema::SCHEMA).map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);

    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("wagate-db-writer".into())
        .spawn(move || run(conn, rx))
        .map_err(StoreError::Thread)?;
    Ok(tx)
}

/// Wrap a store operation into a job whose result reaches `reply` after the commit.
pub(super) fn job<T: Send + 'static>(
    op: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Job {
    Box::new(move |conn| {
        let result = match conn {
            Ok(conn) => savepoint(conn, op).map_err(StoreError::from),
            Err(begin_error) => Err(StoreError::Commit(begin_error.to_string())),
        };
        Box::new(move |commit_error| {
            let result = match commit_error {
                Some(e) => Err(StoreError::Commit(e.to_string())),
                None => result,
            };
            // The caller may have gone away (request cancelled); nothing to do then.
            let _ = reply.send(result);
        })
    })
}

fn run(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    // Ends when every `Store` clone is dropped.
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let deliveries: Vec<Deliver>;
        // IMMEDIATE: take the write lock at BEGIN (waiting on the busy timeout while memory's
        // connection writes). A deferred transaction that reads first fails at once with
        // SQLITE_BUSY_SNAPSHOT when another connection committed in between.
        let failure = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => {
                deliveries = jobs.drain(..).map(|job| job(Ok(&tx))).collect();
                tx.commit().err().map(|e| e.to_string())
            }
            Err(e) => {
                let msg = e.to_string();
                deliveries = jobs.drain(..).map(|job| job(Err(&msg))).collect();
                Some(msg)
            }
        };
        if let Some(e) = &failure {
            tracing::error!(error = %e, "inbox transaction failed; callers are told to retry");
        }
        for deliver in deliveries {
            deliver(failure.as_deref());
        }
    }
}

/// A failing job rolls back alone; the rest of the batch still commits.
fn savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    match op(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}
