//! Gives conversations back to the agent after `handoff.release_after_seconds` without an
//! operator reply, and keeps the handoff gauges fresh.

use super::Handoff;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The sweeper task; looks every `every` until `stop`.
pub async fn run(handoff: Arc<Handoff>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        handoff.sweep().await;
    }
}

/// How often to look: often enough for short timeouts (tests, demos), at most every 5 s.
pub fn period(release_after_seconds: u64) -> Duration {
    Duration::from_millis((release_after_seconds * 1000 / 4).clamp(200, 5000))
}

impl Handoff {
    /// Release every conversation whose last operator reply (or handoff, when none) is older
    /// than `release_after_seconds` by the service's clock. Returns how many went back.
    pub async fn sweep(&self) -> usize {
        let release_after = self
            .config
            .current()
            .config
            .whatsapp
            .handoff
            .release_after_seconds;
        let now = self.now().as_millisecond();
        let mut released = 0;
        for h in self.humans_snapshot() {
            let last = h.last_operator_at.unwrap_or(h.since).max(h.since);
            if now - last < (release_after as i64).saturating_mul(1000) {
                continue;
            }
            match self
                .release(&h.lane, crate::metrics::ReleaseTrigger::Timeout)
                .await
            {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release a conversation; next sweep tries again")
                }
            }
        }
        self.refresh_metrics();
        released
    }
}
