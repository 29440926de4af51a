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
//!   the others sweep now instead of at their next scan. The listening connection is the
//!   store's own; when it is lost it is opened again after 1 s, doubling up to 30 s while that
//!   fails (polling covers the gap), and the first sweep after it catches what was missed. The
//!   store hands the handoff service the other kind of hint heard there (a conversation changed
//!   hands: `Store::conversation_changed_elsewhere`); the dispatcher never sees it.
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
    let shared = dispatcher.store.is_shared();
    let poll = if shared {
        settings.poll.max(Duration::from_millis(10))
    } else {
        SINGLE_PROCESS_RESCAN
    };
    tokio::spawn(poll_store(Arc::downgrade(dispatcher), poll));
    if !(shared && settings.notify) {
        return None;
    }
    tokio::spawn(listen(Arc::downgrade(dispatcher)));
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

/// The dispatcher's stop signal, or `None` when it is gone already.
fn stopping(dispatcher: &Weak<Dispatcher>) -> Option<tokio_util::sync::CancellationToken> {
    dispatcher.upgrade().map(|d| d.stopping.clone())
}

async fn poll_store(dispatcher: Weak<Dispatcher>, every: Duration) {
    let Some(stopping) = stopping(&dispatcher) else {
        return;
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

/// The first pause before listening again after the connection was lost; doubled up to
/// [`LISTEN_RETRY_MAX`] while it keeps failing. Polling covers the gap.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(30);

/// Hints from the other replicas, on a connection of the store's own, listened to again (after
/// a pause) whenever it is lost. Each hint, whatever conversation it names, makes the feeder
/// sweep (and only as far as this replica has free slots): starting a named conversation here
/// without a slot would only leave it to the backlog again.
async fn listen(dispatcher: Weak<Dispatcher>) {
    let Some(stopping) = stopping(&dispatcher) else {
        return;
    };
    let mut pause = LISTEN_RETRY;
    loop {
        let Some(store) = dispatcher.upgrade().map(|d| d.store.clone()) else {
            return;
        };
        let listening = tokio::select! {
            _ = stopping.cancelled() => return,
            listening = store.wake_ups() => listening,
        };
        drop(store);
        match listening {
            Ok(mut wake_ups) => {
                // Anything hinted while this replica was not listening: look now.
                if let Some(dispatcher) = dispatcher.upgrade() {
                    wake_feeder(&dispatcher);
                }
                pause = LISTEN_RETRY;
                loop {
                    let hint = tokio::select! {
                        _ = stopping.cancelled() => return,
                        hint = wake_ups.next() => hint,
                    };
                    let Some(dispatcher) = dispatcher.upgrade() else {
                        return;
                    };
                    if hint.is_none() {
                        break;
                    }
                    dispatcher.metrics.wake_up_hints_received.inc();
                    wake_feeder(&dispatcher);
                }
                tracing::warn!(
                    retry_seconds = pause.as_secs(),
                    "stopped hearing the other replicas' hints (LISTEN connection lost); polling meanwhile"
                );
            }
            Err(e) => tracing::warn!(
                error = %e,
                retry_seconds = pause.as_secs(),
                "cannot listen for the other replicas' hints; polling meanwhile"
            ),
        }
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LISTEN_RETRY_MAX);
    }
}

async fn send_hints(dispatcher: Weak<Dispatcher>, hints: Arc<Hints>) {
    let Some(stopping) = stopping(&dispatcher) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = hints.wanted.notified() => {}
        }
        let Some(store) = dispatcher.upgrade().map(|d| d.store.clone()) else {
            return;
        };
        let sent = store.hint_work().await;
        drop(store);
        let Some(dispatcher) = dispatcher.upgrade() else {
            return;
        };
        match sent {
            Ok(()) => {
                dispatcher.metrics.wake_up_hints_sent.inc();
            }
            // Only a hint: the others' polling finds the work anyway.
            Err(e) => tracing::debug!(error = %e, "cannot hint the other replicas"),
        }
        drop(dispatcher);
        tokio::time::sleep(HINT_SPACING).await;
    }
}
