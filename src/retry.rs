//! Trying again: the one home of every retry's shape and of every wait before one.
//!
//! A [`Backoff`] says how many attempts and how long between them; the policies below are
//! each loop's, named and explained once. Calls to Meta's Graph API have the richer
//! [`RetryPolicy`] (jitter, a time budget, Meta's `Retry-After` and pair rate limit), whose
//! growth is a doubling [`Backoff`] too. The waits at the end are not loops of their own: a turn,
//! a lane or the feeder hands the wait to the dispatcher and tries again after it.

use std::time::Duration;

/// How a wait grows from one failure to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// `first × n` after the n-th failure.
    Linear,
    /// `first × 2^(n-1)` after the n-th failure.
    Doubling,
}

/// How many attempts, and how long to wait after each failed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included; `None` for a loop that never gives up (a
    /// supervisor).
    pub attempts: Option<u32>,
    /// The wait after the first failure.
    pub first: Duration,
    pub growth: Growth,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Waits of `first`, `2 × first`, `4 × first`... up to `max`, forever.
    pub const fn doubling(first: Duration, max: Duration) -> Backoff {
        Backoff {
            attempts: None,
            first,
            growth: Growth::Doubling,
            max,
        }
    }

    /// Waits of `step`, `2 × step`, `3 × step`... for `attempts` attempts in all.
    pub const fn linear(step: Duration, attempts: u32) -> Backoff {
        Backoff {
            attempts: Some(attempts),
            first: step,
            growth: Growth::Linear,
            max: Duration::MAX,
        }
    }

    /// The same backoff, giving up after `attempts` attempts in all.
    pub const fn with_attempts(self, attempts: u32) -> Backoff {
        Backoff {
            attempts: Some(attempts),
            ..self
        }
    }

    /// The wait after failed attempt `failed` (1 for the first attempt); `None` when that was
    /// the last attempt.
    pub fn after(&self, failed: u32) -> Option<Duration> {
        if self.attempts.is_some_and(|attempts| failed >= attempts) {
            return None;
        }
        Some(self.wait(failed))
    }

    /// The wait after failed attempt `failed`, however many attempts are allowed.
    pub fn wait(&self, failed: u32) -> Duration {
        let failed = failed.max(1);
        let wait = match self.growth {
            Growth::Linear => self.first.saturating_mul(failed),
            Growth::Doubling => self.first.saturating_mul(1u32 << (failed - 1).min(31)),
        };
        wait.min(self.max)
    }
}

/// Recording a part Meta accepted: the database is local, so a failure is a lock or a full
/// disk, over in a moment or not at all. Five attempts, 100 ms more each time (a second in
/// all), then the turn gives up and a restart settles the part from Meta's status.
pub const RECORD_ACCEPTED_PART: Backoff = Backoff::linear(Duration::from_millis(100), 5);

/// Telling `handoff.notify_url` a conversation waits: 2 s, then doubling, five attempts in
/// all (about 30 s); after that the console's queue still shows the conversation.
pub const NOTIFY_URL: Backoff =
    Backoff::doubling(Duration::from_secs(2), Duration::MAX).with_attempts(5);

/// Starting an MCP server again after it failed or stopped: 1 s, doubling up to a minute, for
/// as long as the agent exists (a server that stayed up a while starts from 1 s again).
pub const MCP_RESTART: Backoff = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(60));

/// A model server's 429 with `Retry-After` is retried this many times, within the call's
/// own timeout; without `Retry-After` a 429 is a quota error and the next model is asked.
pub const MODEL_RATE_LIMIT_RETRIES: u32 = 2;

/// A model server asking to wait longer than this is treated as failing: the next model in
/// the agent's list is a better use of the customer's time.
pub const MODEL_LONGEST_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A turn whose reply Meta did not take through every Graph retry (Meta down or throttling
/// hard) is tried again after this: long enough not to add to an outage.
pub const TURN_AFTER_GRAPH_OUTAGE: Duration = Duration::from_secs(30);

/// A turn that failed on the local side (reading or writing the inbox) is tried again after
/// this: such errors pass quickly or need an operator.
pub const TURN_AFTER_LOCAL_ERROR: Duration = Duration::from_secs(5);

/// A lane that could not read its next turn from the inbox looks again after this.
pub const LANE_AFTER_CLAIM_ERROR: Duration = Duration::from_secs(1);

/// The feeder, when it could not read which conversations wait, looks again after this.
pub const FEEDER_AFTER_STORE_ERROR: Duration = Duration::from_secs(1);

/// Calls to Meta's Graph API: exponential backoff with full jitter (a random wait between zero
/// and the doubling ceiling), so many conversations throttled at once do not come back in
/// lockstep; `Retry-After` and the pair rate limit (131056) lengthen a wait, never shorten it.
/// `Default` is the production policy; tests use millisecond delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Ceiling of the first backoff; it doubles with each retry.
    pub base_delay: Duration,
    /// Largest backoff drawn (a longer `Retry-After` is still honoured, within the budget).
    pub max_delay: Duration,
    /// No retry starts whose wait would end later than this after the first failure. Counted
    /// from the failure, not the first attempt, so time queued behind the rate limiter before
    /// the first attempt does not eat the retries.
    pub total_budget: Duration,
    /// Smallest wait after code 131056: Meta allows about one message every 6 s per user.
    pub pair_rate_limit_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            total_budget: Duration::from_secs(60),
            pair_rate_limit_delay: Duration::from_secs(6),
        }
    }
}

impl RetryPolicy {
    /// The growth of the wait's ceiling: `base_delay`, doubling up to `max_delay` (the wait
    /// itself is drawn below it, see `whatsapp::graph::retry`).
    pub fn growth(&self) -> Backoff {
        Backoff::doubling(self.base_delay, self.max_delay).with_attempts(self.max_attempts)
    }

    /// The same policy with at most `max_attempts` attempts.
    pub fn with_max_attempts(&self, max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linear_backoff_waits_one_step_more_each_time_then_gives_up() {
        let waits: Vec<Option<Duration>> = (1..=5).map(|n| RECORD_ACCEPTED_PART.after(n)).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            waits,
            vec![
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(300)),
                Some(ms(400)),
                None
            ]
        );
    }

    #[test]
    fn a_doubling_backoff_stops_growing_at_its_cap() {
        let secs = Duration::from_secs;
        let waits: Vec<Duration> = (1..=8).map(|n| MCP_RESTART.wait(n)).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60].map(secs).to_vec());
        assert_eq!(MCP_RESTART.after(1000), Some(secs(60)), "never gives up");
        assert_eq!(MCP_RESTART.wait(u32::MAX), secs(60), "no overflow");
    }

    #[test]
    fn the_notify_url_backoff_doubles_from_two_seconds_for_five_attempts() {
        let waits: Vec<Option<Duration>> = (1..=5).map(|n| NOTIFY_URL.after(n)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(waits, vec![secs(2), secs(4), secs(8), secs(16), None]);
    }
}
