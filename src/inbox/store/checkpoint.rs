//! Checkpoints off the writer's path.
//!
//! In WAL mode every commit appends pages to the `-wal` file, and a checkpoint copies them back
//! into the database file (one write per page, then an fsync of the database). SQLite's
//! automatic checkpoint does that inside the commit that crossed the threshold, so the writer,
//! and every webhook waiting on it, would stall for the whole copy. This thread copies the pages
//! first with PASSIVE checkpoints, which run beside the writer; the writer's own automatic
//! checkpoint (kept as the backstop that lets the WAL start over from its beginning) then finds
//! little or nothing left to copy.

use super::{schema, Durability};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Pause between checkpoints when the last one copied little.
const IDLE_PAUSE: Duration = Duration::from_millis(100);
/// Pause when the WAL is filling fast.
const BUSY_PAUSE: Duration = Duration::from_millis(5);
/// At least this many pages appended to the WAL since the last checkpoint means the writer is
/// busy.
const BUSY_PAGES: i64 = 128;

/// Start the checkpoint thread; it stops once `closed` is set. A failure to start it is not
/// fatal: the writer's own automatic checkpoints keep the WAL bounded.
pub(super) fn spawn(path: &Path, durability: Durability, closed: Arc<AtomicBool>) {
    let conn = match Connection::open(path).and_then(|c| {
        schema::configure_checkpointer(&c, durability)?;
        Ok(c)
    }) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no background checkpoints; the writer will checkpoint");
            return;
        }
    };
    let started = std::thread::Builder::new()
        .name("wagate-db-checkpoint".into())
        .spawn(move || run(conn, closed));
    if let Err(e) = started {
        tracing::warn!(error = %e, "no background checkpoints; the writer will checkpoint");
    }
}

fn run(conn: Connection, closed: Arc<AtomicBool>) {
    let mut last_size = 0;
    while !closed.load(Ordering::Relaxed) {
        // (busy, pages in the WAL, pages copied so far); the WAL restarts from 0 when the
        // writer finds every page copied.
        let size = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
        let pause = match size {
            Ok(size) => {
                let appended = if size >= last_size {
                    size - last_size
                } else {
                    size
                };
                last_size = size;
                if appended >= BUSY_PAGES {
                    BUSY_PAUSE
                } else {
                    IDLE_PAUSE
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "background checkpoint skipped");
                IDLE_PAUSE
            }
        };
        std::thread::sleep(pause);
    }
}
