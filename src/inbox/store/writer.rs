//! The writer thread and its group commit.
//!
//! A job is a store operation over the write connection. The thread takes every job waiting at
//! that moment (up to `MAX_BATCH`), runs them all in ONE transaction, commits once, and only then
//! tells each caller its result: nobody hears "done" before the data is on disk.
//!
//! Jobs run without savepoints (each savepoint copies every page it touches first into a
//! sub-journal); if one fails, the whole batch is rolled back and run again with one savepoint
//! per job, so the failing job rolls back alone and the others still commit. Jobs are therefore
//! `FnMut`: an operation may run twice, and only the result of the committed run is delivered.

use super::files::FileGuard;
use super::job::Job;
use super::pace::{Pace, Stats};
use super::{checkpoint, parts, schema, Durability, StoreError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Most jobs one transaction takes; bounds the wait of the first job in a huge burst.
const MAX_BATCH: usize = 1024;

pub(super) type Sender = mpsc::Sender<Box<dyn Job>>;

/// Open the write connection, bring the schema up to date and start the thread. Returns the
/// queue, the database's id (`parts::PartRef`) and the file it opened.
pub(super) fn spawn(
    path: &Path,
    durability: Durability,
) -> Result<(Sender, String, Arc<FileGuard>), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    schema::configure(&conn, durability).map_err(open_err)?;
    schema::create(&conn).map_err(open_err)?;
    let database_id = parts::database_id(&conn).map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    let file = Arc::new(FileGuard::new(path));

    let (tx, rx) = mpsc::channel();
    let closed = Arc::new(AtomicBool::new(false));
    std::thread::Builder::new()
        .name("wagate-db-writer".into())
        .spawn({
            let closed = Arc::clone(&closed);
            let file = Arc::clone(&file);
            move || {
                run(conn, rx, &file);
                closed.store(true, Ordering::Relaxed);
            }
        })
        .map_err(StoreError::Thread)?;
    checkpoint::spawn(path, durability, closed);
    Ok((tx, database_id, file))
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, file: &FileGuard) {
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut pace = Pace::default();
    let mut stats = Stats::default();
    // Ends when every `Store` clone is dropped.
    while gather(&rx, &mut jobs, pace.linger()) {
        let started = Instant::now();
        // A deleted or replaced file would swallow the commit: refuse the batch instead.
        let failure = match file.check() {
            Ok(()) => commit_batch(&conn, &mut jobs),
            Err(reason) => Some(reason),
        };
        let took = started.elapsed();
        pace.record(jobs.len(), took);
        stats.record(jobs.len(), took);
        if let Some(e) = &failure {
            tracing::error!(error = %e, "inbox transaction failed; callers are told to retry");
        }
        for job in jobs.drain(..) {
            job.deliver(failure.as_deref());
        }
    }
}

/// Block for the first job, take every job already waiting, then linger as `Pace` says.
/// `false` when every sender is gone.
fn gather(
    rx: &mpsc::Receiver<Box<dyn Job>>,
    jobs: &mut Vec<Box<dyn Job>>,
    linger: Duration,
) -> bool {
    match rx.recv() {
        Ok(job) => jobs.push(job),
        Err(_) => return false,
    }
    jobs.extend(rx.try_iter().take(MAX_BATCH - 1));
    if linger.is_zero() {
        return true;
    }
    let deadline = Instant::now() + linger;
    while jobs.len() < MAX_BATCH {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
        jobs.extend(rx.try_iter().take(MAX_BATCH - jobs.len()));
    }
    true
}

/// Run every job in one transaction and commit; `Some(reason)` when nothing was committed.
fn commit_batch(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> Option<String> {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return Some(e.to_string());
    }
    if jobs.iter_mut().all(|job| job.run(conn)) {
        return finish(conn);
    }
    // Slow path: a job failed. Start again with one savepoint per job, so its partial writes
    // roll back alone.
    rollback(conn);
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return Some(e.to_string());
    }
    for job in jobs.iter_mut() {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            rollback(conn);
            return Some(e.to_string());
        }
        let ok = job.run(conn);
        if !ok {
            let _ = exec(conn, "ROLLBACK TO job");
        }
        if let Err(e) = exec(conn, "RELEASE job") {
            rollback(conn);
            return Some(e.to_string());
        }
    }
    finish(conn)
}

fn finish(conn: &Connection) -> Option<String> {
    match exec(conn, "COMMIT") {
        Ok(()) => None,
        Err(e) => {
            rollback(conn);
            Some(e.to_string())
        }
    }
}

/// Undo the open transaction, if SQLite has not already done so after an error.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
}

/// Transaction control through cached statements: parsed once, not per batch or per job.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
