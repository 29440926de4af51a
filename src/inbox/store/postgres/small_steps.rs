//! Background deletes (the retention purge, memory's expiry) in small steps: a batch, then a
//! rest four times as long as the batch took, so they never take more than a fifth of a
//! PostgreSQL core from the message path while they run.
//!
//! An hour of a busy number is millions of rows. Deleted back to back they would hold a core
//! for a minute, and on a small machine the p99 of every message meanwhile with it: the reason
//! autovacuum works in small steps on these tables too (migration 7, BENCHMARKS.md,
//! "Maintenance in small steps").

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The longest rest between two batches (a batch that waited long for a lock is not followed
/// by a rest four times as long).
const MAX_REST: Duration = Duration::from_secs(2);

/// Run `batch` (a delete of at most `full` rows, returning how many it deleted) until one
/// deletes fewer than `full`, resting after each ([`rest_after`]); the rows deleted in all.
pub(super) async fn delete_in_small_steps<E, Batch, Deleting>(
    full: u64,
    mut batch: Batch,
) -> Result<u64, E>
where
    Batch: FnMut() -> Deleting,
    Deleting: Future<Output = Result<u64, E>>,
{
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = batch().await?;
        total += deleted;
        if deleted < full {
            return Ok(total);
        }
        tokio::time::sleep(rest_after(started.elapsed())).await;
    }
}

/// The rest after a batch that took `took`: four times as long (at most [`MAX_REST`]), so the
/// deletes are PostgreSQL's work a fifth of the time they run.
fn rest_after(took: Duration) -> Duration {
    (took * 4).min(MAX_REST)
}

#[cfg(test)]
mod tests {
    use super::{delete_in_small_steps, rest_after, MAX_REST};
    use std::time::Duration;

    #[test]
    fn a_batch_is_followed_by_four_times_its_length_of_rest_so_deletes_take_a_fifth_of_a_core() {
        let batch = Duration::from_millis(40);
        let rest = rest_after(batch);
        assert_eq!(rest, Duration::from_millis(160));
        assert!((batch.as_secs_f64() / (batch + rest).as_secs_f64() - 0.2).abs() < 1e-9);
        assert_eq!(
            rest_after(Duration::from_secs(30)),
            MAX_REST,
            "a batch that waited long for a lock is not followed by a long rest"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deletes_go_on_while_batches_come_back_full_and_rest_between_them() {
        let mut left = 2_500_u64;
        let started = tokio::time::Instant::now();
        let deleted = delete_in_small_steps(1_000, || {
            let take = left.min(1_000);
            left -= take;
            async move {
                // Each batch takes 50 ms of PostgreSQL's time.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, ()>(take)
            }
        })
        .await
        .unwrap();
        assert_eq!(deleted, 2_500, "every row, in three batches");
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(3 * 50 + 2 * 200),
            "a rest after each full batch, none after the last"
        );
    }
}
