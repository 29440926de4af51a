//! How the dispatcher hears of work it did not record itself.
//!
//! A webhook recorded by this process notifies its lane directly ([`Dispatcher::notify`]).
//! Everything else reaches the dispatcher through the store, by one of three wake-ups, each of
//! which only wakes the [`feeder`](super::feeder) (it sweeps the store for conversations with
//! work, as far as free turn slots allow; with no slot free it does not even ask the store):
//!
//! - **A periodic scan.** On one process (SQLite) it finds what an operator re-queued
//!   (`wagate retry`) or what a failed notification left behind, every 15 s. On a shared store
//!   (PostgreSQL, several replicas) it is the fallback that never misses anything: every
//!   `poll` (500 ms by default) it finds conversations another replica recorded but could not
//!   start (it was busy), and those of a replica that died once their lease expired. Idle, it
//!   costs one indexed query per interval and replica.
//! - **Hints from the other replicas** (PostgreSQL `LISTEN`), on a shared store with `notify`
//!   on: a replica that records work it cannot start at once (no turn slot free) says so, and
//!   the others sweep now instead of at their next scan.
//! - **Hints to the other replicas** (PostgreSQL `NOTIFY`): sent by this process when it leaves
//!   a conversation to the backlog for lack of a slot. Never inside the intake transaction (a
//!   `NOTIFY` takes a cluster-wide lock at commit, which would serialise the webhooks' commits),
//!   at most one per `HINT_SPACING`, and none while the replicas have slots to spare. Turned off
//!   (`--notify off`), polling alone does the job, with up to `poll` more latency for work one
//!   replica cannot take.

use super::Dispatcher;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The scan's interval on a store only this process uses.
pub const SINGLE_PROCESS_RESCAN: Duration = Duration::from_secs(15);

/// At most one hint to the other replicas per this interval: under a heavy load, hints go out
/// at a bounded rate however many conversations wait.
const HINT_SPACING: Duration = Duration::from_millis(20);

/// How the dispatcher learns of work other replicas recorded (matters on a shared store only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeUpSettings {
    /// How often the store is scanned for conversations this process could take.
    pub poll: Duration,
    /// Send and listen for hints (PostgreSQL `NOTIFY`/`LISTEN`) besides polling.
    pub notify: bool,
}

impl Default for WakeUpSettings {
    fn default() -> Self {
        WakeUpSettings {
            poll: Duration::from_millis(500),
            notify: true,
        }
    }
}

/// Hints to the other replicas: a flag set by lanes, drained by one sender task.
pub(super) struct Hints {
    wanted: Notify,
}

impl Hints {
    /// This process left work to the backlog: tell the others (coalesced, spaced).
    pub(super) fn send(&self) {
        self.wanted.notify_one();
    }
}

/// Start the wake-up tasks of `dispatcher`; returns the hint sender when hints go out. The
/// tasks end when the dispatcher stops or is dropped.
pub(super) fn spawn(dispatcher: &Arc<Dispatcher>, settings: WakeUpSettings) -> Option<Arc<Hints>> {
    let shared = dispatcher.store.shared();
    let poll = if shared {
        settings.poll.max(Duration::from_millis(10))
    } else {
        SINGLE_PROCESS_RESCAN
    };
    tokio::spawn(poll_store(Arc::downgrade(dispatcher), poll));
    if !(shared && settings.notify) {
        return None;
    }
    if let Some(hints) = dispatcher.store.work_hints() {
        tokio::spawn(listen(Arc::downgrade(dispatcher), hints));
    }
    let hints = Arc::new(Hints {
        wanted: Notify::new(),
    });
    tokio::spawn(send_hints(Arc::downgrade(dispatcher), Arc::clone(&hints)));
    Some(hints)
}

/// The store may hold work no lane task looks at: let the feeder sweep it.
fn wake_feeder(dispatcher: &Dispatcher) {
    dispatcher.slots.add_backlog();
    dispatcher.feed.notify_one();
}

async fn poll_store(dispatcher: Weak<Dispatcher>, every: Duration) {
    let stopping = match dispatcher.upgrade() {
        Some(d) => d.stopping.clone(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(dispatcher) = dispatcher.upgrade() else {
            return;
        };
        wake_feeder(&dispatcher);
    }
}

/// Hints from the other replicas (the store reconnects its listener by itself, and sends one
/// hint after a reconnect, for whatever was missed meanwhile).
async fn listen(dispatcher: Weak<Dispatcher>, mut hints: tokio::sync::mpsc::Receiver<()>) {
    let stopping = match dispatcher.upgrade() {
        Some(d) => d.stopping.clone(),
        None => return,
    };
    loop {
        let hint = tokio::select! {
            _ = stopping.cancelled() => return,
            hint = hints.recv() => hint,
        };
        let (Some(()), Some(dispatcher)) = (hint, dispatcher.upgrade()) else {
            return;
        };
        dispatcher.metrics.wake_up_hints_received.inc();
        wake_feeder(&dispatcher);
    }
}

async fn send_hints(dispatcher: Weak<Dispatcher>, hints: Arc<Hints>) {
    let stopping = match dispatcher.upgrade() {
        Some(d) => d.stopping.clone(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = hints.wanted.notified() => {}
        }
        let Some(dispatcher) = dispatcher.upgrade() else {
            return;
        };
        match dispatcher.store.hint_work().await {
            Ok(()) => dispatcher.metrics.wake_up_hints_sent.inc(),
            // Only a hint: the others' polling finds the work anyway.
            Err(e) => tracing::debug!(error = %e, "cannot hint the other replicas"),
        }
        drop(dispatcher);
        tokio::time::sleep(HINT_SPACING).await;
    }
}
