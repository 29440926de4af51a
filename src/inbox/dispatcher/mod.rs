//! The dispatcher: one ordered lane per conversation, lanes in parallel under a global bound.
//!
//! A lane is a task that exists only while its conversation is being answered (or gathers a
//! burst for `debounce`). When the webhook records new messages it calls
//! [`Dispatcher::notify`]; an idle lane starts, waits `debounce`, takes a turn slot, takes the
//! conversation's pending messages (up to `MAX_MESSAGES_PER_TURN`) as one turn (from the store,
//! so nothing is held only in memory), hands it to the [`TurnHandler`], records the outcome,
//! and repeats until the store has nothing left for it. Messages of one lane are therefore
//! answered strictly in arrival order and never by two turns at once.
//!
//! Waiting work lives in the store, not in memory: a lane that finds every turn slot taken
//! does not wait as a task, it ends and leaves its conversation to the [`feeder`], which, each
//! time a slot frees up, claims the next conversations with work from the store in pages (and
//! at start, `resume` does the same instead of waking every conversation at once). Memory thus
//! grows with the turns running, not with the conversations waiting. A lane that just ran a
//! turn while others wait gives its slot back too, so a busy conversation cannot keep one.
//!
//! Fast path: with no debounce, a webhook for an idle conversation first [`Dispatcher::reserve`]s
//! it (and a turn slot); the webhook's own commit then claims the turn
//! ([`Store::record_and_claim`]) and the lane starts with it, one trip to the writer instead of
//! two (the [`reservation`]). Closing a turn and claiming the next one share a commit too.
//!
//! Several replicas (PostgreSQL): what changes when other processes share the store (leases,
//! a turn taken over, hints to the others, looking for work no local notify announced) lives
//! in [`shared`]; work recorded elsewhere reaches this replica through the [`wakeups`].

mod feeder;
mod reservation;
mod shared;
mod slots;
pub mod wakeups;

use super::{LaneKey, Store, Turn, TurnOutcome, MAX_MESSAGES_PER_TURN};
use crate::metrics::{self, Metrics};
pub use reservation::Reservation;
use shared::Replicas;
use slots::{Slot, Slots};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
pub use wakeups::WakeUpSettings;

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
    /// How work recorded by other replicas reaches this one (a shared store only).
    pub wake_ups: WakeUpSettings,
}

pub struct Dispatcher {
    store: Store,
    handler: Arc<dyn TurnHandler>,
    debounce: Duration,
    /// Lanes with a task, turn slots, and whether the store holds work no lane task looks at.
    slots: Slots,
    /// Wakes the feeder: a slot came free while work waits in the store.
    feed: Arc<Notify>,
    tasks: TaskTracker,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
    /// The other replicas sharing the store, if any (PostgreSQL).
    replicas: Replicas,
}

/// How a lane task begins.
struct Start {
    /// A turn already claimed for it (by the webhook's commit).
    turn: Option<Turn>,
    /// A turn slot already held.
    slot: Option<Slot>,
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

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // Lets the feeder task see that the dispatcher is gone and end.
        self.feed.notify_one();
    }
}

impl Dispatcher {
    pub fn new(
        store: Store,
        handler: Arc<dyn TurnHandler>,
        settings: DispatcherSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let replicas = Replicas::new(&store);
        let dispatcher = Arc::new(Dispatcher {
            store,
            handler,
            debounce: settings.debounce,
            slots: Slots::new(settings.max_concurrent_turns.max(1)),
            feed: Arc::new(Notify::new()),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            metrics,
            replicas,
        });
        feeder::spawn(&dispatcher);
        if let Some(hints) = wakeups::spawn(&dispatcher, settings.wake_ups) {
            dispatcher.replicas.send_hints_with(hints);
        }
        dispatcher
    }

    /// New work was committed for `lane`: make sure a lane task (or the feeder) will see it.
    pub fn notify(self: &Arc<Self>, lane: LaneKey) {
        if self.stopping.is_cancelled() {
            return; // left in the inbox; resumed at the next start
        }
        // An idle lane has no interrupted turn: its last claim found none.
        if self.slots.mark_or_insert(&lane) {
            self.metrics.lanes_active.inc();
            let start = Start {
                turn: None,
                slot: None,
                maybe_interrupted: false,
            };
            self.spawn_lane(lane, start);
        }
    }

    /// The store the dispatcher claims from.
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Run a lane task (its entry in `slots` exists already).
    fn spawn_lane(self: &Arc<Self>, lane: LaneKey, start: Start) {
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move { this.run_lane(lane, start).await });
    }

    /// Look at the inbox for work no lane is looking at (after a restart or a crash, a
    /// re-queued turn): the feeder claims it page by page as turn slots allow, so a large
    /// backlog does not wake every conversation at once. Returns how many conversations it
    /// started at once (more follow as slots free up).
    pub async fn resume(self: &Arc<Self>) -> Result<usize, super::StoreError> {
        self.slots.add_backlog();
        feeder::feed(self).await
    }

    /// Lane tasks alive (running a turn or gathering a burst): bounded by the turn slots and
    /// the debounce, never by the conversations waiting in the store.
    pub fn live_lanes(&self) -> usize {
        self.tasks.len()
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
            slot: mut held,
            mut maybe_interrupted,
        } = start;
        loop {
            if self.stopping.is_cancelled() {
                break;
            }
            if held.is_none() {
                if claimed.is_none()
                    && !self.debounce.is_zero()
                    && self
                        .cancellable(tokio::time::sleep(self.debounce))
                        .await
                        .is_none()
                {
                    break;
                }
                // No slot free (or others already wait for one): the lane ends and its work
                // waits in the store for the feeder.
                match self.slots.take_or_leave(&self, &lane) {
                    Some(slot) => held = Some(slot),
                    None => {
                        self.metrics.lanes_active.dec();
                        self.replicas.left_to_backlog();
                        return;
                    }
                }
            }
            let after = match claimed.take() {
                Some(turn) => self.run_turn(turn, &lane).await,
                None => match self.claim(&lane, maybe_interrupted).await {
                    Ok(Some(turn)) => self.run_turn(turn, &lane).await,
                    Ok(None) => AfterTurn::Idle,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim a turn; the lane retries in 1 s");
                        AfterTurn::RetryAfter(crate::retry::LANE_AFTER_CLAIM_ERROR)
                    }
                },
            };
            // The slot is given back after each turn when other conversations wait for one (or a
            // debounce or a retry delay comes first), so a busy conversation cannot keep one
            // from the others: it takes its next slot through the feeder like them.
            match after {
                AfterTurn::Next(turn) => claimed = Some(turn),
                AfterTurn::Idle => {
                    maybe_interrupted = false;
                    held = None;
                    if self.slots.idle_or_continue(&lane) {
                        self.metrics.lanes_active.dec();
                        return;
                    }
                }
                AfterTurn::Claim {
                    maybe_interrupted: m,
                } => {
                    maybe_interrupted = m;
                    if self.slots.others_wait_for_slot() || !self.debounce.is_zero() {
                        held = None;
                    }
                }
                AfterTurn::RetryAfter(delay) => {
                    maybe_interrupted = true;
                    held = None;
                    if self.cancellable(tokio::time::sleep(delay)).await.is_none() {
                        break;
                    }
                }
            }
        }
        // Stopping: forget the lane; its work (and a turn claimed but not started) stays in the
        // inbox and is resumed at the next start.
        drop(held);
        if self.slots.remove(&lane) {
            self.metrics.lanes_active.dec();
        }
    }

    /// The lane's next turn from the store. Notifications from here on mark the lane dirty, so
    /// a lane that finds nothing looks again before going idle.
    async fn claim(
        &self,
        lane: &LaneKey,
        maybe_interrupted: bool,
    ) -> Result<Option<Turn>, super::StoreError> {
        self.slots.set_dirty(lane, false);
        let claimed = if maybe_interrupted {
            self.store.claim_turn(lane.clone()).await
        } else {
            self.store.claim_new_turn(lane.clone()).await
        };
        if let Ok(Some(turn)) = &claimed {
            self.count_claim(metrics::ClaimedBy::Dispatcher);
            self.mark_if_more(turn, lane);
        }
        claimed
    }

    /// `wagate_turns_claimed_total{by}`: a rising share `by="dispatcher"` means turns wait for a
    /// slot (or for a look at the store) instead of starting with the webhook's commit.
    fn count_claim(&self, by: metrics::ClaimedBy) {
        self.metrics
            .turns_claimed
            .get_or_create(&metrics::ClaimLabels { by })
            .inc();
    }

    /// A resumed turn leaves the pending messages behind it, and a full turn (the cap) may
    /// leave more: look again after it.
    fn mark_if_more(&self, turn: &Turn, lane: &LaneKey) {
        if turn.attempt > 0 || turn.messages.len() >= MAX_MESSAGES_PER_TURN {
            self.slots.set_dirty(lane, true);
        }
    }

    /// Run one turn and record its outcome; when no debounce has to gather a burst first and
    /// new messages were notified, take the lane's next turn in the same commit.
    async fn run_turn(&self, turn: Turn, lane: &LaneKey) -> AfterTurn {
        if turn.messages.len() >= MAX_MESSAGES_PER_TURN {
            self.slots.set_dirty(lane, true);
        }
        let turn_id = turn.id;
        let attempt = turn.attempt;
        let started = Instant::now();
        let mut outcome = self.handler.handle(turn).await;
        self.metrics
            .turn_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        if let TurnOutcome::RetryLater { reason, .. } = &outcome {
            if attempt + 1 >= MAX_ATTEMPTS {
                outcome =
                    TurnOutcome::Failed(format!("gave up after {MAX_ATTEMPTS} attempts: {reason}"));
            }
        }
        let label = match &outcome {
            TurnOutcome::Done => metrics::TurnOutcome::Done,
            TurnOutcome::Failed(_) => metrics::TurnOutcome::Failed,
            TurnOutcome::RetryLater { .. } => metrics::TurnOutcome::RetryLater,
        };
        self.metrics
            .turns
            .get_or_create(&metrics::TurnLabels { outcome: label })
            .inc();
        if let TurnOutcome::Failed(reason) = &outcome {
            tracing::warn!(turn_id, reason = %reason, "turn failed; `wagate inbox` lists it");
        }
        if let TurnOutcome::RetryLater { after, .. } = &outcome {
            let after = *after;
            if let Err(e) = self.store.finish_turn(turn_id, outcome).await {
                if e.is_lease_lost() {
                    return shared::lease_lost(turn_id);
                }
                tracing::error!(turn_id, error = %e, "cannot record the end of a turn");
            }
            return AfterTurn::RetryAfter(after);
        }
        // Every commit of new messages is followed by a `notify` that marks the lane dirty.
        // Not dirty: nothing arrived since the claim, or its notify is still to come (and will
        // find the lane, or start it again once idle), so the commit need not look. With
        // others waiting for a slot, the next turn is not claimed here: the slot goes back.
        // With other replicas, one may have recorded messages for this conversation that no
        // local notify announced: always look.
        let others = self.replicas.others_may_record();
        let claim_next = self.debounce.is_zero()
            && !self.stopping.is_cancelled()
            && !self.slots.others_wait_for_slot()
            && (self.slots.set_dirty(lane, false) || others);
        let waiting = !claim_next && (self.slots.is_dirty(lane) || others);
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
            Ok(Some(next)) => {
                self.count_claim(metrics::ClaimedBy::Close);
                self.mark_if_more(&next, lane);
                AfterTurn::Next(next)
            }
            Ok(None) if self.debounce.is_zero() && waiting => AfterTurn::Claim {
                maybe_interrupted: false,
            },
            Ok(None) if self.debounce.is_zero() => AfterTurn::Idle,
            Ok(None) => AfterTurn::Claim {
                maybe_interrupted: false,
            },
            // The turn stays `running`: the lane's next claim resumes it (unless taken over).
            Err(e) => shared::finish_failed(turn_id, &e),
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

#[cfg(test)]
mod tests;
