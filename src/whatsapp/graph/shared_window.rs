//! The channel cap (`rate_limit`) shared by every replica on one PostgreSQL database.
//!
//! With SQLite one process sends, and `pacing::RollingWindow` keeps the cap in memory. With
//! several replicas each would keep its own window and the deployment would send the cap
//! times the replicas, so the window lives in the database instead (the store's
//! [`SendSlots`], `inbox::store::postgres::rate_limit`), and this side asks it for send slots
//! in small batches: one short transaction per batch, never one per message.
//!
//! A grant is `granted` slots, usable for [`LEASE`] from the moment the request left this
//! process (not from its answer: the database granted them at some instant after we asked,
//! so "asked + lease" is never later than "granted + lease" as the database counts it). The
//! database counts a grant against every window span that its lease overlaps (see the proof
//! next to its SQL), so a slot reserved at `t` and used at `t + d` (`d` < lease) is counted
//! in the window that contains `t + d`. Slots left when the lease ends are dropped, and the
//! next request hands the grant back settled: how many were used and within how long of the
//! request, so the database stops counting what was never sent.
//!
//! Meta's 130429 (throughput reached) pauses the channel in the database: every replica's
//! next request waits it out, and this replica drops what is left of its own grant at once.
//!
//! Waiters queue in arrival order behind an async mutex, as in the local window: only the head
//! talks to the database, asking for as many slots as sends are waiting, and more when the last
//! grant ran out before its lease (sends come faster than one trip each: twice as many, up to
//! [`BATCH_MAX`]), as many as it used when it lapsed with slots left. A quiet channel so
//! reserves one slot per send and wastes none; a busy one makes one trip per [`BATCH_MAX`]
//! sends (one per send made the database's grant the costliest statement of a message at
//! 300 msg/s: BENCHMARKS.md).

use super::pacing::RateLimitWindow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most slots one request reserves: a few, so one replica's batch never starves the others
/// for long, and still one database trip per several sends under load.
pub const BATCH_MAX: u32 = 8;
/// How long a grant's slots may be used. Short: after a 130429 on another replica, this one
/// sends at most what is left of its current grant, within this time.
pub const LEASE: Duration = Duration::from_secs(1);
/// Shortest and longest wait before asking again when nothing was granted: the database says
/// when room frees up, and a replica asks again at least every second (a pause or a settled
/// grant of another replica can free room earlier).
const MIN_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_secs(1);
/// Wait before asking again when the database did not answer.
const ERROR_POLL: Duration = Duration::from_secs(1);

/// The shared window could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the shared rate limit in the database: {0}")]
pub struct SlotsError(pub String);

/// A request for send slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// Slots wanted (1..=[`BATCH_MAX`]).
    pub want: u32,
    /// `rate_limit.max_messages` and `window_seconds` in force on this replica.
    pub max_messages: u32,
    pub window: Duration,
    /// How long the slots may be used, counted by the database from its grant.
    pub lease: Duration,
    /// The previous grant of this replica, handed back.
    pub settle: Option<Settlement>,
}

/// What became of a grant: `used` of its slots, the last one within `used_within` of the
/// request (so the database may count the grant as over at `granted_at + used_within`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub grant_id: i64,
    pub used: u32,
    pub used_within: Duration,
}

/// The database's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGrant {
    /// The grant's id, for its settlement (meaningless when `granted` is 0).
    pub id: i64,
    /// Slots granted: 0 when the window is full or the channel paused.
    pub granted: u32,
    /// With nothing granted: when room is expected.
    pub retry_in: Duration,
}

/// A boxed future of the store's answer (the trait stays object safe without a macro crate).
pub type SlotFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SlotsError>> + Send + 'a>>;

/// Where the shared window lives: implemented by the store on PostgreSQL.
pub trait SendSlots: Send + Sync + 'static {
    /// Reserve up to `request.want` send slots, after settling the previous grant.
    fn reserve(&self, request: SlotRequest) -> SlotFuture<'_, SlotGrant>;
    /// Meta answered 130429: no replica starts a send for `pause`.
    fn pause(&self, pause: Duration) -> SlotFuture<'_, ()>;
}

/// A shared window for [`super::GraphOptions`]; `Debug` names it without its innards.
#[derive(Clone)]
pub struct SharedRateLimit(pub Arc<dyn SendSlots>);

impl std::fmt::Debug for SharedRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRateLimit(database)")
    }
}

/// The channel cap kept in the database, as one Graph client uses it.
pub(crate) struct SharedWindow {
    slots: Arc<dyn SendSlots>,
    limit: RateLimitWindow,
    held: tokio::sync::Mutex<Option<Held>>,
    /// Sends waiting here (the head included): how many slots to ask for.
    waiting: AtomicUsize,
    /// Bumped by every 130429: slots granted before it are not used.
    pauses: AtomicU64,
}

/// The grant this replica is using.
struct Held {
    id: i64,
    granted: u32,
    left: u32,
    used: u32,
    asked_at: Instant,
    last_use: Option<Instant>,
    pauses: u64,
}

impl Held {
    fn settlement(&self) -> Settlement {
        let used_within = match self.last_use {
            // Rounded up to the millisecond the database counts in.
            Some(last) => (last - self.asked_at) + Duration::from_millis(1),
            None => Duration::ZERO,
        };
        Settlement {
            grant_id: self.id,
            used: self.used,
            used_within,
        }
    }
}

/// Counts a waiter for as long as it waits, cancelled or not.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SharedWindow {
    pub(crate) fn new(slots: Arc<dyn SendSlots>, limit: RateLimitWindow) -> Self {
        SharedWindow {
            slots,
            limit,
            held: tokio::sync::Mutex::new(None),
            waiting: AtomicUsize::new(0),
            pauses: AtomicU64::new(0),
        }
    }

    /// A window of `max` sends per `window` on `slots` (tests of the store's side).
    #[cfg(test)]
    pub(crate) fn with_limit(slots: Arc<dyn SendSlots>, max: u32, window: Duration) -> Self {
        Self::new(slots, RateLimitWindow { max, window })
    }

    /// Waits until the deployment may start one more send, and takes its slot.
    pub(crate) async fn wait_for_room(&self) {
        let _waiting = Waiting::enter(&self.waiting);
        let mut held = self.held.lock().await;
        loop {
            let now = Instant::now();
            let pauses = self.pauses.load(Ordering::Acquire);
            if let Some(grant) = held.as_mut() {
                let usable = grant.left > 0 && now < grant.asked_at + LEASE;
                if usable && grant.pauses == pauses {
                    grant.left -= 1;
                    grant.used += 1;
                    grant.last_use = Some(now);
                    return;
                }
            }
            let previous = held.take();
            let settle = previous.as_ref().map(Held::settlement);
            let want = self.want(previous.as_ref());
            let request = SlotRequest {
                want,
                max_messages: self.limit.max,
                window: self.limit.window,
                lease: LEASE,
                settle,
            };
            let asked_at = Instant::now();
            match self.slots.reserve(request).await {
                Ok(grant) if grant.granted > 0 => {
                    *held = Some(Held {
                        id: grant.id,
                        granted: grant.granted,
                        left: grant.granted,
                        used: 0,
                        asked_at,
                        last_use: None,
                        pauses,
                    });
                }
                Ok(grant) => {
                    tokio::time::sleep(grant.retry_in.clamp(MIN_POLL, MAX_POLL)).await;
                }
                Err(e) => {
                    // Nothing is sent without a slot: a database that does not answer holds
                    // sends back (the turn's own writes fail too) rather than break the cap.
                    tracing::warn!(error = %e, "cannot reserve send slots; asking again in 1 s");
                    tokio::time::sleep(ERROR_POLL).await;
                }
            }
        }
    }

    /// Slots to ask for after `previous` (the grant handed back, if any): at least the sends
    /// waiting now; twice the last grant when it ran out (sends outpace one trip each), as
    /// many as it used when it lapsed with slots left; at most [`BATCH_MAX`] and the cap.
    fn want(&self, previous: Option<&Held>) -> u32 {
        let paced = match previous {
            Some(last) if last.left == 0 => last.granted.saturating_mul(2),
            Some(last) => last.used,
            None => 1,
        };
        let waiting = u32::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        waiting
            .max(paced)
            .clamp(1, BATCH_MAX.min(self.limit.max).max(1))
    }

    /// Meta said 130429: pause every replica for `pause`, and stop using our own grant now.
    pub(crate) async fn throttled(&self, pause: Duration) {
        self.pauses.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.slots.pause(pause).await {
            tracing::warn!(error = %e, "cannot share Meta's throughput limit (130429) with the other replicas");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory stand-in with the database's rule, to test this side alone (the real one
    /// is tested against PostgreSQL in the store's tests).
    #[derive(Default)]
    struct Recorder {
        requests: Mutex<Vec<SlotRequest>>,
        paused: Mutex<Vec<Duration>>,
        grant: Mutex<u32>,
        /// How long the "database" takes to answer.
        delay: Duration,
        /// Grants `grant` slots whatever was asked (to test leftovers).
        generous: bool,
    }

    impl SendSlots for Recorder {
        fn reserve(&self, request: SlotRequest) -> SlotFuture<'_, SlotGrant> {
            let grant = *self.grant.lock().unwrap();
            let granted = if self.generous {
                grant
            } else {
                grant.min(request.want)
            };
            let id = self.requests.lock().unwrap().len() as i64;
            self.requests.lock().unwrap().push(request);
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(SlotGrant {
                    id,
                    granted,
                    retry_in: Duration::from_millis(50),
                })
            })
        }

        fn pause(&self, pause: Duration) -> SlotFuture<'_, ()> {
            self.paused.lock().unwrap().push(pause);
            Box::pin(async { Ok(()) })
        }
    }

    fn window(recorder: &Arc<Recorder>, max: u32) -> SharedWindow {
        SharedWindow::new(
            Arc::clone(recorder) as Arc<dyn SendSlots>,
            RateLimitWindow {
                max,
                window: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_head_asks_for_as_many_slots_as_sends_wait_and_settles_the_last_grant() {
        let recorder = Arc::new(Recorder {
            delay: Duration::from_millis(10),
            ..Recorder::default()
        });
        *recorder.grant.lock().unwrap() = 8;
        let shared = Arc::new(window(&recorder, 30));
        let sends: Vec<_> = (0..4)
            .map(|_| {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { shared.wait_for_room().await })
            })
            .collect();
        for send in sends {
            send.await.unwrap();
        }
        {
            // The first send found nobody behind it; the three that queued meanwhile share
            // one trip, which hands the first grant back.
            let requests = recorder.requests.lock().unwrap();
            assert_eq!(requests.len(), 2, "four sends, two trips: {requests:?}");
            assert_eq!(requests[0].want, 1);
            assert_eq!(requests[0].settle, None);
            assert_eq!(requests[1].want, 3);
            let settle = requests[1].settle.expect("the first grant handed back");
            assert_eq!((settle.grant_id, settle.used), (0, 1));
            assert!(
                settle.used_within <= Duration::from_millis(11),
                "{settle:?}"
            );
        }
        tokio::time::advance(LEASE * 2).await;
        shared.wait_for_room().await;
        let requests = recorder.requests.lock().unwrap();
        assert_eq!(requests[2].settle.map(|s| s.used), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_that_use_up_each_grant_get_bigger_grants_and_a_quiet_spell_shrinks_them() {
        let recorder = Arc::new(Recorder::default());
        *recorder.grant.lock().unwrap() = 100;
        let shared = window(&recorder, 30);
        // One send after another, each grant used up: 1, 2, 4, 8 slots, then BATCH_MAX.
        for _ in 0..(1 + 2 + 4 + 8 + 8) {
            shared.wait_for_room().await;
        }
        let wants = |r: &Recorder| {
            r.requests
                .lock()
                .unwrap()
                .iter()
                .map(|q| q.want)
                .collect::<Vec<_>>()
        };
        assert_eq!(wants(&recorder), vec![1, 2, 4, 8, 8]);
        // Three sends from a fresh grant of eight, then the lease lapses: the next trip asks
        // for three, not eight.
        shared.wait_for_room().await;
        shared.wait_for_room().await;
        shared.wait_for_room().await;
        tokio::time::advance(LEASE).await;
        shared.wait_for_room().await;
        assert_eq!(wants(&recorder), vec![1, 2, 4, 8, 8, 8, 3]);
        // Never more than the cap allows.
        let small = window(&recorder, 2);
        for _ in 0..8 {
            small.wait_for_room().await;
        }
        assert!(
            wants(&recorder)[7..].iter().all(|&w| w <= 2),
            "{:?}",
            wants(&recorder)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_is_not_used_past_its_lease_nor_after_a_throttle() {
        let recorder = Arc::new(Recorder {
            generous: true,
            ..Recorder::default()
        });
        *recorder.grant.lock().unwrap() = 5;
        let shared = window(&recorder, 30);
        shared.wait_for_room().await; // one of five used
        tokio::time::advance(LEASE).await;
        shared.wait_for_room().await; // the lease ended: a new grant
        assert_eq!(recorder.requests.lock().unwrap().len(), 2);
        shared.wait_for_room().await; // from the same grant
        assert_eq!(recorder.requests.lock().unwrap().len(), 2);
        shared.throttled(Duration::from_secs(2)).await;
        shared.wait_for_room().await; // the throttle dropped the rest
        let requests = recorder.requests.lock().unwrap();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[1].settle.map(|s| s.used), Some(1));
        assert_eq!(requests[2].settle.map(|s| s.used), Some(2));
        assert_eq!(
            *recorder.paused.lock().unwrap(),
            vec![Duration::from_secs(2)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_granted_means_waiting_not_sending() {
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(window(&recorder, 30));
        let send = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { shared.wait_for_room().await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!send.is_finished(), "no slot, no send");
        *recorder.grant.lock().unwrap() = 1;
        send.await.unwrap();
        assert!(recorder.requests.lock().unwrap().len() >= 2);
    }
}
