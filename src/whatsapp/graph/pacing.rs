//! Outbound pacing: the channel-wide message cap and spacing between parts sent to one user.
//!
//! Channel cap (`rate_limit`): a governor GCRA limiter that refills one cell every
//! `window_seconds / max_messages` and holds at most `max_messages` cells. After a quiet spell a
//! burst of `max_messages` goes out at once; under sustained load the rate settles at
//! `max_messages` per window. (So a window that starts with a full burst can see up to about
//! twice `max_messages`; the long-run average is the configured cap.) Every attempt that is about
//! to reach Meta takes one cell, retries included: Meta counts the requests it receives, and a
//! throttled retry should slow us down, not get a free pass. Over the cap a send waits; nothing
//! is dropped.
//!
//! Per-user spacing: consecutive sends from one business number to one user are spaced by at
//! least `per_user_interval`, and after code 131056 (pair rate limit) that pair waits longer.
//! Waiting for one user never holds up sends to others: each waits on its own slot.

use crate::config::RateLimit;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The map of user slots is pruned of past entries once it holds more than this many.
const PRUNE_FLOOR: usize = 1024;

/// Channel limiter plus per-user spacing, shared by every send of one client.
pub(crate) struct Pacer {
    channel: DefaultDirectRateLimiter,
    per_user_interval: Duration,
    /// Business number + user -> earliest instant the next send to that pair may start.
    /// A std Mutex: it is only held for a map update, never across an `.await`.
    users: Mutex<UserSlots>,
    /// Total time sends spent waiting here, in microseconds (for metrics).
    waited_micros: AtomicU64,
}

struct UserSlots {
    next_allowed: HashMap<String, Instant>,
    /// Size above which past entries are dropped; doubles with the live set so pruning stays
    /// amortised O(1) per send even when many users are active.
    prune_at: usize,
}

impl Pacer {
    pub(crate) fn new(rate: &RateLimit, per_user_interval: Duration) -> Self {
        Pacer {
            channel: RateLimiter::direct(channel_quota(rate)),
            per_user_interval,
            users: Mutex::new(UserSlots {
                next_allowed: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
            waited_micros: AtomicU64::new(0),
        }
    }

    /// Waits until a message from `from` to `to` may go out, then takes its channel cell.
    pub(crate) async fn wait_turn(&self, from: &str, to: &str) {
        let started = Instant::now();
        let key = pair_key(from, to);
        if let Some(slot) = self.reserve(&key, started) {
            tokio::time::sleep_until(slot).await;
        }
        self.channel.until_ready().await;
        self.push_back(&key, Instant::now() + self.per_user_interval);
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.waited_micros.fetch_add(waited, Ordering::Relaxed);
    }

    /// After a pair rate limit answer (131056): no send to this user for at least `wait`.
    pub(crate) fn hold_pair(&self, from: &str, to: &str, wait: Duration) {
        self.push_back(&pair_key(from, to), Instant::now() + wait);
    }

    /// Total time sends have spent waiting for the channel cap or per-user spacing.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_micros.load(Ordering::Relaxed))
    }

    /// Books the pair's next slot; returns it when it lies in the future.
    fn reserve(&self, key: &str, now: Instant) -> Option<Instant> {
        if self.per_user_interval.is_zero() && !self.has_entry(key) {
            return None;
        }
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.prune_if_large(now);
        let slot = users
            .next_allowed
            .get(key)
            .map_or(now, |next| (*next).max(now));
        users
            .next_allowed
            .insert(key.to_owned(), slot + self.per_user_interval);
        (slot > now).then_some(slot)
    }

    /// Moves the pair's next slot to `until` unless it is already later.
    fn push_back(&self, key: &str, until: Instant) {
        let now = Instant::now();
        if until <= now {
            return;
        }
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.prune_if_large(now);
        let next = users.next_allowed.entry(key.to_owned()).or_insert(until);
        *next = (*next).max(until);
    }

    fn has_entry(&self, key: &str) -> bool {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.next_allowed.contains_key(key)
    }
}

impl UserSlots {
    fn prune_if_large(&mut self, now: Instant) {
        if self.next_allowed.len() <= self.prune_at {
            return;
        }
        // A slot in the past constrains nothing, so forgetting it changes no behaviour.
        self.next_allowed.retain(|_, next| *next > now);
        self.prune_at = PRUNE_FLOOR.max(self.next_allowed.len() * 2);
    }
}

/// `max_messages` per `window_seconds`, with a burst of `max_messages`. A zero `max_messages`
/// counts as 1 and a zero window as one second, so a bad config slows sends instead of panicking.
fn channel_quota(rate: &RateLimit) -> Quota {
    let max = NonZeroU32::new(rate.max_messages).unwrap_or(NonZeroU32::MIN);
    let window = Duration::from_secs(rate.window_seconds);
    Quota::with_period(window / max.get())
        .map(|quota| quota.allow_burst(max))
        .unwrap_or_else(|| Quota::per_second(max))
}

fn pair_key(from: &str, to: &str) -> String {
    format!("{from}\u{0}{to}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(window_seconds: u64, max_messages: u32) -> RateLimit {
        RateLimit {
            window_seconds,
            max_messages,
        }
    }

    #[test]
    fn the_quota_spreads_the_window_over_the_messages_with_a_full_burst() {
        let quota = channel_quota(&rate(60, 30));
        assert_eq!(quota.replenish_interval(), Duration::from_secs(2));
        assert_eq!(quota.burst_size().get(), 30);
    }

    #[test]
    fn a_zero_cap_or_window_does_not_panic() {
        assert_eq!(channel_quota(&rate(60, 0)).burst_size().get(), 1);
        assert_eq!(
            channel_quota(&rate(0, 5)).replenish_interval(),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn the_user_map_forgets_pairs_whose_slot_has_passed() {
        let now = Instant::now();
        let mut slots = UserSlots {
            next_allowed: HashMap::new(),
            prune_at: PRUNE_FLOOR,
        };
        for user in 0..(PRUNE_FLOOR * 3) {
            slots.next_allowed.insert(format!("past{user}"), now);
        }
        slots
            .next_allowed
            .insert("future".into(), now + Duration::from_secs(60));
        slots.prune_if_large(now);
        assert_eq!(slots.next_allowed.len(), 1);
        assert!(slots.next_allowed.contains_key("future"));
    }

    #[tokio::test]
    async fn a_held_pair_must_wait_while_other_users_need_not() {
        let pacer = Pacer::new(&rate(1, 1000), Duration::ZERO);
        pacer.hold_pair("biz", "a", Duration::from_secs(6));
        let now = Instant::now();
        assert_eq!(pacer.reserve(&pair_key("biz", "b"), now), None);
        let slot = pacer.reserve(&pair_key("biz", "a"), now);
        assert!(slot.is_some_and(|slot| slot >= now + Duration::from_secs(5)));
    }

    #[tokio::test]
    async fn parts_to_one_user_get_consecutive_slots() {
        let pacer = Pacer::new(&rate(1, 1000), Duration::from_secs(1));
        let now = Instant::now();
        let key = pair_key("biz", "a");
        assert_eq!(pacer.reserve(&key, now), None);
        assert_eq!(pacer.reserve(&key, now), Some(now + Duration::from_secs(1)));
        assert_eq!(pacer.reserve(&key, now), Some(now + Duration::from_secs(2)));
    }
}
