//! The dispatcher: one ordered lane per conversation, lanes in parallel under a global bound.
//!
//! A lane is a task that exists only while its conversation has work. When the webhook records
//! new messages it calls [`Dispatcher::notify`]; an idle lane starts, waits `debounce`, takes
//! every pending message of its conversation as one turn (from the store, so nothing is held
//! only in memory), hands it to the [`TurnHandler`], records the outcome, and repeats until the
//! store has nothing left for it. Messages of one lane are therefore answered strictly in
//! arrival order and never by two turns at once.
//!
//! Fast path: with no debounce, a webhook for an idle conversation first [`Dispatcher::reserve`]s
//! it (and a turn slot); the webhook's own commit then claims the turn
//! ([`Store::record_and_claim`]) and the lane starts with it, one trip to the writer instead of
//! two. Closing a turn and claiming the next one share a commit too.

use super::{LaneKey, Store, Turn, TurnOutcome};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Answers one turn. The agent and the Graph API client plug in here.
pub trait TurnHandler: Send + Sync + 'static {
    fn handle(&self, turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>>;
}

/// A turn that keeps asking to be retried is failed after this many attempts, so a poisoned
/// conversation cannot loop forever.
const MAX_ATTEMPTS: u32 = 8;

pub struct DispatcherSettings {
    /// Turns running at the same time, across all conversations.
    pub max_concurrent_turns: usize,
    /// Wait this long before a lane takes its turn, to gather a burst.
    pub debounce: Duration,
}

pub struct Dispatcher {
    store: Store,
    handler: Arc<dyn TurnHandler>,
    permits: Arc<Semaphore>,
    debounce: Duration,
    /// Lanes with a running task. `dirty` is set by `notify` so a lane about to go idle looks
    /// at the store once more: a message committed while it was finishing is never stranded.
    lanes: Mutex<HashMap<LaneKey, LaneState>>,
    tasks: TaskTracker,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct LaneState {
    dirty: bool,
}

/// How a lane task begins.
struct Start {
    /// A turn already claimed for it (by the webhook's commit).
    turn: Option<Turn>,
    /// A turn slot already held.
    permit: Option<OwnedSemaphorePermit>,
    /// The store may hold an interrupted turn of this lane, so claims look for one first.
    /// `false` only when the lane is known to have none (it went idle after its last claim).
    maybe_interrupted: bool,
}

/// What a lane does after a turn.
enum AfterTurn {
    /// Run this turn, claimed in the commit that closed the previous one.
    Next(Turn),
    /// Nothing was pending at that commit: go idle unless new work arrived since.
    Idle,
    /// Claim the next turn the usual way (after the debounce); `true` when the turn just run
    /// may still be `running` in the store.
    Claim { maybe_interrupted: bool },
    /// The turn asked to be retried after this delay.
    RetryAfter(Duration),
}

/// The turn stays `running` in the store; the lane's next claim resumes it (and a restart
/// would too).
fn finish_failed(turn_id: i64, e: &super::StoreError) -> AfterTurn {
    tracing::error!(turn_id, error = %e, "cannot record the end of a turn");
    AfterTurn::Claim {
        maybe_interrupted: true,
    }
}

/// An idle conversation set aside for one webhook, with a turn slot: the webhook's commit
/// claims the lane's turn ([`Store::record_and_claim`]) and [`Reservation::start`] runs it.
/// Dropped unstarted (the request was cancelled, the commit failed), the lane starts anyway
/// and claims from the store, so nothing the commit may have recorded is stranded.
pub struct Reservation {
    dispatcher: Arc<Dispatcher>,
    lane: LaneKey,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// The conversation reserved.
    pub fn lane(&self) -> &LaneKey {
        &self.lane
    }

    /// Start the lane with the turn the commit claimed for it (`None`: it claims from the store).
    pub fn start(mut self, turn: Option<Turn>) {
        self.launch(turn);
    }

    fn launch(&mut self, turn: Option<Turn>) {
        if let Some(permit) = self.permit.take() {
            let start = Start {
                maybe_interrupted: turn.is_none(),
                turn,
                permit: Some(permit),
            };
            self.dispatcher.spawn_lane(self.lane.clone(), start);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.launch(None);
    }
}

impl Dispatcher {
    pub fn new(
        store: Store,
        handler: Arc<dyn TurnHandler>,
        settings: DispatcherSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            store,
            handler,
            permits: Arc::new(Semaphore::new(settings.max_concurrent_turns.max(1))),
            debounce: settings.debounce,
            lanes: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            metrics,
        })
    }

    /// New work was committed for `lane`: make sure a lane task will see it.
    pub fn notify(self: &Arc<Self>, lane: LaneKey) {
        // An idle lane has no interrupted turn: its last claim found none.
        self.wake(lane, false);
    }

    /// Before recording a webhook: when `lane` is idle, no debounce applies and a turn slot is
    /// free, set the lane (and the slot) aside so the webhook's commit can claim its turn.
    /// `None`: record normally and [`notify`](Self::notify) after the commit.
    pub fn reserve(self: &Arc<Self>, lane: &LaneKey) -> Option<Reservation> {
        if !self.debounce.is_zero() || self.stopping.is_cancelled() {
            return None;
        }
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if lanes.contains_key(lane) {
            return None;
        }
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        lanes.insert(lane.clone(), LaneState::default());
        drop(lanes);
        self.metrics.gauge_add("wagate_lanes_active", &[], 1.0);
        Some(Reservation {
            dispatcher: Arc::clone(self),
            lane: lane.clone(),
            permit: Some(permit),
        })
    }

    fn wake(self: &Arc<Self>, lane: LaneKey, maybe_interrupted: bool) {
        if self.stopping.is_cancelled() {
            return; // left in the inbox; resumed at the next start
        }
        let start = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            match lanes.get_mut(&lane) {
                Some(state) => {
                    state.dirty = true;
                    false
                }
                None => {
                    lanes.insert(lane.clone(), LaneState { dirty: true });
                    true
                }
            }
        };
        if start {
            self.metrics.gauge_add("wagate_lanes_active", &[], 1.0);
            let start = Start {
                turn: None,
                permit: None,
                maybe_interrupted,
            };
            self.spawn_lane(lane, start);
        }
    }

    /// Run a lane task (its `lanes` entry exists already).
    fn spawn_lane(self: &Arc<Self>, lane: LaneKey, start: Start) {
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move { this.run_lane(lane, start).await });
    }

    /// Resume everything the inbox holds (after a restart or a crash). Returns how many
    /// conversations had work.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, super::StoreError> {
        let lanes = self.store.open_lanes().await?;
        let count = lanes.len();
        for lane in lanes {
            self.wake(lane, true);
        }
        Ok(count)
    }

    /// Stop taking new turns, give running ones until `grace` to finish, and return. Whatever
    /// is unfinished stays in the inbox and is resumed at the next start.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stopping.cancel();
        self.tasks.close();
        let finished = tokio::time::timeout(grace, self.tasks.wait()).await.is_ok();
        if !finished {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "turns still running at the shutdown deadline; they resume at the next start"
            );
        }
        finished
    }

    async fn run_lane(self: Arc<Self>, lane: LaneKey, start: Start) {
        let Start {
            turn: mut claimed,
            permit: mut held,
            mut maybe_interrupted,
        } = start;
        loop {
            if self.stopping.is_cancelled() {
                break;
            }
            if claimed.is_none()
                && !self.debounce.is_zero()
                && self
                    .cancellable(tokio::time::sleep(self.debounce))
                    .await
                    .is_none()
            {
                break;
            }
            // Permits are taken per turn (and given back after it), in FIFO order, so a busy
            // conversation cannot keep one away from the others.
            let permit = match held.take() {
                Some(permit) => permit,
                None => match self.acquire().await {
                    Some(permit) => permit,
                    None => break, // stopping
                },
            };
            let after = match claimed.take() {
                Some(turn) => self.run_turn(turn, &lane).await,
                None => match self.claim(&lane, maybe_interrupted).await {
                    Ok(Some(turn)) => self.run_turn(turn, &lane).await,
                    Ok(None) => AfterTurn::Idle,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim a turn; the lane retries in 1 s");
                        AfterTurn::RetryAfter(Duration::from_secs(1))
                    }
                },
            };
            drop(permit);
            match after {
                AfterTurn::Next(turn) => claimed = Some(turn),
                AfterTurn::Idle => {
                    maybe_interrupted = false;
                    if self.idle_or_continue(&lane) {
                        return;
                    }
                }
                AfterTurn::Claim {
                    maybe_interrupted: m,
                } => maybe_interrupted = m,
                AfterTurn::RetryAfter(delay) => {
                    maybe_interrupted = true;
                    if self.cancellable(tokio::time::sleep(delay)).await.is_none() {
                        break;
                    }
                }
            }
        }
        // Stopping: forget the lane; its work (and a turn claimed but not started) stays in the
        // inbox and is resumed at the next start.
        self.remove_lane(&lane);
    }

    /// The lane's next turn from the store. Notifications from here on mark the lane dirty, so
    /// a lane that finds nothing looks again before going idle.
    async fn claim(
        &self,
        lane: &LaneKey,
        maybe_interrupted: bool,
    ) -> Result<Option<Turn>, super::StoreError> {
        self.lane_state(lane, |s| s.dirty = false);
        let claimed = if maybe_interrupted {
            self.store.claim_turn(lane.clone()).await
        } else {
            self.store.claim_new_turn(lane.clone()).await
        };
        if let Ok(Some(turn)) = &claimed {
            if turn.attempt > 0 {
                // A resumed turn leaves the pending messages behind it: look again after it.
                self.lane_state(lane, |s| s.dirty = true);
            }
        }
        claimed
    }

    /// A turn slot, or `None` when stopping.
    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.metrics.gauge_add("wagate_lanes_waiting", &[], 1.0);
        let permit = self
            .cancellable(Arc::clone(&self.permits).acquire_owned())
            .await;
        self.metrics.gauge_add("wagate_lanes_waiting", &[], -1.0);
        // Err: the semaphore closed, which only happens when stopping.
        permit.and_then(Result::ok)
    }

    /// Run one turn and record its outcome; when no debounce has to gather a burst first and
    /// new messages were notified, take the lane's next turn in the same commit.
    async fn run_turn(&self, turn: Turn, lane: &LaneKey) -> AfterTurn {
        let turn_id = turn.id;
        let attempt = turn.attempt;
        let started = Instant::now();
        let mut outcome = self.handler.handle(turn).await;
        self.metrics.observe(
            "wagate_turn_duration_seconds",
            &[],
            started.elapsed().as_secs_f64(),
        );
        if let TurnOutcome::RetryLater { reason, .. } = &outcome {
            if attempt + 1 >= MAX_ATTEMPTS {
                outcome =
                    TurnOutcome::Failed(format!("gave up after {MAX_ATTEMPTS} attempts: {reason}"));
            }
        }
        let label = match &outcome {
            TurnOutcome::Done => "done",
            TurnOutcome::Failed(_) => "failed",
            TurnOutcome::RetryLater { .. } => "retry_later",
        };
        self.metrics
            .inc("wagate_turns_total", &[("outcome", label)]);
        if let TurnOutcome::Failed(reason) = &outcome {
            tracing::warn!(turn_id, reason = %reason, "turn failed; `wagate inbox` lists it");
        }
        if let TurnOutcome::RetryLater { after, .. } = &outcome {
            let after = *after;
            if let Err(e) = self.store.finish_turn(turn_id, outcome).await {
                tracing::error!(turn_id, error = %e, "cannot record the end of a turn");
            }
            return AfterTurn::RetryAfter(after);
        }
        // Every commit of new messages is followed by a `notify` that marks the lane dirty.
        // Not dirty: nothing arrived since the claim, or its notify is still to come (and will
        // find the lane, or start it again once idle), so the commit need not look.
        let claim_next = self.debounce.is_zero() && !self.stopping.is_cancelled() && {
            let mut dirty = false;
            self.lane_state(lane, |s| dirty = std::mem::take(&mut s.dirty));
            dirty
        };
        let closed = if claim_next {
            let lane = lane.clone();
            self.store.finish_and_claim(turn_id, outcome, lane).await
        } else {
            self.store
                .finish_turn(turn_id, outcome)
                .await
                .map(|()| None)
        };
        match closed {
            Ok(Some(next)) => AfterTurn::Next(next),
            Ok(None) if self.debounce.is_zero() => AfterTurn::Idle,
            Ok(None) => AfterTurn::Claim {
                maybe_interrupted: false,
            },
            Err(e) => finish_failed(turn_id, &e),
        }
    }

    /// `true` when the lane is idle and removed; `false` when new work arrived meanwhile.
    fn idle_or_continue(&self, lane: &LaneKey) -> bool {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if lanes.get(lane).is_some_and(|s| s.dirty) {
            return false;
        }
        lanes.remove(lane);
        drop(lanes);
        self.metrics.gauge_add("wagate_lanes_active", &[], -1.0);
        true
    }

    fn remove_lane(&self, lane: &LaneKey) {
        let removed = self
            .lanes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(lane)
            .is_some();
        if removed {
            self.metrics.gauge_add("wagate_lanes_active", &[], -1.0);
        }
    }

    fn lane_state(&self, lane: &LaneKey, f: impl FnOnce(&mut LaneState)) {
        if let Some(state) = self
            .lanes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(lane)
        {
            f(state);
        }
    }

    /// `None` when shutdown began before `fut` finished.
    async fn cancellable<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.stopping.cancelled() => None,
            v = fut => Some(v),
        }
    }
}
