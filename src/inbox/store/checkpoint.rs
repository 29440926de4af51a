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

/// Pages each background checkpoint aims to copy. Every checkpoint that copies something also
/// fsyncs the database file, so passes are spaced to copy about this many pages each (about a
/// quarter of the writer's own threshold, `wal_autocheckpoint` 4000) rather than run often.
const PAGES_PER_PASS: f64 = 1000.0;
/// Bounds of the pause between passes.
const MIN_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(250);

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
    let mut pause = MAX_PAUSE;
    while !closed.load(Ordering::Relaxed) {
        std::thread::sleep(pause);
        // (busy, pages in the WAL, pages copied so far); the WAL restarts from 0 when the
        // writer finds every page copied.
        let size = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
        pause = match size {
            Ok(size) => {
                let appended = if size >= last_size {
                    size - last_size
                } else {
                    size
                };
                last_size = size;
                next_pause(pause, appended)
            }
            Err(e) => {
                tracing::debug!(error = %e, "background checkpoint skipped");
                MAX_PAUSE
            }
        };
    }
}

/// The pause that would have let about `PAGES_PER_PASS` pages accumulate, at the rate seen over
/// the last pause.
fn next_pause(last: Duration, appended: i64) -> Duration {
    if appended <= 0 {
        return MAX_PAUSE;
    }
    let rate = appended as f64 / last.as_secs_f64();
    Duration::from_secs_f64(PAGES_PER_PASS / rate).clamp(MIN_PAUSE, MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_come_sooner_when_the_wal_fills_faster() {
        let fast = next_pause(Duration::from_millis(100), 5_000);
        let slow = next_pause(Duration::from_millis(100), 200);
        assert_eq!(fast, Duration::from_millis(20));
        assert_eq!(slow, MAX_PAUSE);
        assert_eq!(next_pause(MIN_PAUSE, 1_000_000), MIN_PAUSE);
        assert_eq!(next_pause(MAX_PAUSE, 0), MAX_PAUSE);
    }
}
