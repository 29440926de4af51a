//! How long the writer waits for more jobs before a commit, and what it reports about its
//! batches.

use std::time::{Duration, Instant};

/// Group-commit pacing. Every commit costs a WAL sync (`synchronous=FULL`: an fsync), whatever
/// it holds. Under load, waiting a fraction of that cost for more jobs before committing turns
/// several commits into one; when idle (the last batch held one job), nothing waits.
#[derive(Default)]
pub(super) struct Pace {
    last_jobs: usize,
    /// Smoothed duration of a commit (run + sync), in microseconds.
    commit_micros: f64,
}

impl Pace {
    /// Longest wait for more jobs before starting a batch: small next to the 2 ms latency
    /// budget, large next to the time a burst of webhooks takes to reach the writer.
    const MAX_LINGER: Duration = Duration::from_micros(100);

    pub(super) fn linger(&self) -> Duration {
        if self.last_jobs < 2 {
            return Duration::ZERO;
        }
        Duration::from_micros((self.commit_micros / 4.0) as u64).min(Self::MAX_LINGER)
    }

    pub(super) fn record(&mut self, jobs: usize, took: Duration) {
        self.last_jobs = jobs;
        let micros = took.as_secs_f64() * 1e6;
        self.commit_micros = if self.commit_micros == 0.0 {
            micros
        } else {
            0.8 * self.commit_micros + 0.2 * micros
        };
    }
}

/// What group commit did lately, logged at debug level every few seconds
/// (`RUST_LOG=wagate::inbox=debug`): batches, jobs per batch, and how long commits took.
pub(super) struct Stats {
    since: Instant,
    batches: u64,
    jobs: u64,
    busy: Duration,
    longest: Duration,
    /// Commits (run + sync) within 0.5, 1, 2, 5, 10 ms, and longer.
    by_duration: [u64; 6],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            since: Instant::now(),
            batches: 0,
            jobs: 0,
            busy: Duration::ZERO,
            longest: Duration::ZERO,
            by_duration: [0; 6],
        }
    }
}

impl Stats {
    const EVERY: Duration = Duration::from_secs(5);
    const BOUNDS_MICROS: [u128; 5] = [500, 1_000, 2_000, 5_000, 10_000];

    pub(super) fn record(&mut self, jobs: usize, took: Duration) {
        self.batches += 1;
        self.jobs += jobs as u64;
        self.busy += took;
        self.longest = self.longest.max(took);
        let slot = Self::BOUNDS_MICROS
            .iter()
            .position(|b| took.as_micros() <= *b)
            .unwrap_or(Self::BOUNDS_MICROS.len());
        self.by_duration[slot] += 1;
        if self.since.elapsed() >= Self::EVERY {
            let seconds = self.since.elapsed().as_secs_f64();
            tracing::debug!(
                batches_per_second = (self.batches as f64 / seconds).round(),
                jobs_per_batch = format!("{:.1}", self.jobs as f64 / self.batches as f64),
                writer_busy = format!("{:.0}%", self.busy.as_secs_f64() / seconds * 100.0),
                longest_ms = format!("{:.2}", self.longest.as_secs_f64() * 1e3),
                commits_within_0_5_1_2_5_10_ms_and_over = ?self.by_duration,
                "inbox group commit"
            );
            *self = Stats::default();
        }
    }
}
