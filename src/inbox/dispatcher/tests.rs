//! The dispatcher against a real store: memory follows the turns running, not the backlog.

use super::*;
use crate::inbox::store::Durability;
use crate::inbox::{Batch, InboundState, NewInbound};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Holds every turn until `open` has a permit for it (each permit lets one turn end); counts
/// turns seen.
struct Gate {
    open: tokio::sync::Semaphore,
    seen: AtomicUsize,
}

impl TurnHandler for Gate {
    fn handle(&self, _turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(async move {
            self.seen.fetch_add(1, Ordering::SeqCst);
            if let Ok(pass) = self.open.acquire().await {
                pass.forget();
            }
            TurnOutcome::Done
        })
    }
}

fn message(i: usize) -> NewInbound {
    let id = format!("wamid.backlog.{i}");
    NewInbound {
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"hi"}}}}"#),
        message_id: id,
        lane: LaneKey {
            phone_number_id: "PNID".into(),
            user: format!("u{i:06}"),
        },
        display_phone_number: "15550000000".into(),
        contact_name: None,
        kind: "text".into(),
        timestamp: 1_700_000_000,
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

/// How the waiting work reaches the dispatcher.
#[derive(Clone, Copy, PartialEq)]
enum Arrival {
    /// Notified as the webhook would, conversation by conversation.
    Notified,
    /// Already in the inbox at start: `resume`.
    Resumed,
}

/// `waiting` conversations with one message each; returns the lane tasks alive once the
/// dispatcher settled, and the turns started.
async fn live_lanes_with(waiting: usize, arrival: Arrival) -> (usize, usize) {
    const SLOTS: usize = 8;
    let gate = closed_gate();
    let (dispatcher, store, _dir) = gated_dispatcher(SLOTS, &gate);
    for chunk in (0..waiting).collect::<Vec<_>>().chunks(1_000) {
        let batch = Batch {
            messages: chunk.iter().map(|i| message(*i)).collect(),
            ..Batch::default()
        };
        let outcome = store.record(batch).await.unwrap();
        if arrival == Arrival::Notified {
            for lane in outcome.new_pending {
                dispatcher.notify(lane);
            }
        }
    }
    if arrival == Arrival::Resumed {
        let started = dispatcher.resume().await.unwrap();
        assert_eq!(started, SLOTS, "resume starts one conversation per slot");
    }
    // Every slot takes a turn; every other notified lane leaves its work to the store.
    for _ in 0..500 {
        if gate.seen.load(Ordering::SeqCst) >= SLOTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let live = dispatcher.live_lanes();
    let started = gate.seen.load(Ordering::SeqCst);

    // Released, the backlog drains through the slots, conversation after conversation.
    gate.open.add_permits(1_000_000);
    let drained = async {
        while gate.seen.load(Ordering::SeqCst) < waiting.min(300) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .expect("waiting conversations get their turns as slots free up");
    assert!(dispatcher.live_lanes() <= SLOTS + 1);
    dispatcher.shutdown(Duration::from_secs(5)).await;
    (live, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lane_tasks_stay_flat_as_waiting_conversations_grow() {
    let (few, started_few) = live_lanes_with(200, Arrival::Notified).await;
    let (many, started_many) = live_lanes_with(20_000, Arrival::Notified).await;
    assert_eq!(started_few, 8, "every slot runs a turn");
    assert_eq!(started_many, 8, "every slot runs a turn");
    assert!(few <= 8, "{few} lane tasks for 200 waiting conversations");
    assert!(
        many <= 8,
        "{many} lane tasks for 20,000 waiting conversations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_a_large_backlog_starts_one_conversation_per_slot_not_all_of_them() {
    let (live, started) = live_lanes_with(5_000, Arrival::Resumed).await;
    assert_eq!(started, 8);
    assert!(
        live <= 8,
        "{live} lane tasks after resuming 5,000 conversations"
    );
}

/// Holds the first turn until told, then answers it `Done`; counts turns seen.
struct Paused {
    started: tokio::sync::Notify,
    go: tokio::sync::Semaphore,
    seen: AtomicUsize,
}

impl TurnHandler for Paused {
    fn handle(&self, _turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(async move {
            self.seen.fetch_add(1, Ordering::SeqCst);
            self.started.notify_one();
            let _go = self.go.acquire().await;
            TurnOutcome::Done
        })
    }
}

#[tokio::test]
async fn a_turn_taken_over_by_another_replica_is_stopped_neither_closed_nor_run_again() {
    let Some(db) = crate::inbox::store::testdb::TestDb::fresh().await else {
        return;
    };
    let url = db.database_url();
    let (paused_replica, other) = (
        Store::open_postgres(&url).await.unwrap(),
        Store::open_postgres(&url).await.unwrap(),
    );
    let handler = Arc::new(Paused {
        started: tokio::sync::Notify::new(),
        go: tokio::sync::Semaphore::new(0),
        seen: AtomicUsize::new(0),
    });
    let dispatcher = Dispatcher::new(
        paused_replica.clone(),
        Arc::clone(&handler) as Arc<dyn TurnHandler>,
        DispatcherSettings {
            max_concurrent_turns: 4,
            debounce: Duration::ZERO,
            wake_ups: WakeUpSettings::default(),
        },
        Arc::new(Metrics::new()),
    );
    let outcome = paused_replica
        .record(Batch {
            messages: vec![message(1)],
            ..Batch::default()
        })
        .await
        .unwrap();
    let lane = outcome.new_pending[0].clone();
    dispatcher.notify(lane.clone());
    handler.started.notified().await;

    // The replica stalls in its model call past the lease; another one takes over.
    db.expire_leases().await;
    let taken = other
        .claim_turn(lane.clone())
        .await
        .unwrap()
        .expect("taken over");
    handler.go.add_permits(10);
    for _ in 0..200 {
        if dispatcher.live_lanes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        dispatcher.live_lanes(),
        0,
        "the stalled replica's lane stopped"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handler.seen.load(Ordering::SeqCst), 1, "not run again");
    let state = db
        .query_text(&format!("SELECT state FROM turns WHERE id = {}", taken.id))
        .await;
    assert_eq!(
        state, "running",
        "its late `Done` did not close the new owner's turn"
    );
    other
        .finish_turn(taken.id, TurnOutcome::Done)
        .await
        .unwrap();
}

/// A dispatcher of `slots` turn slots over a fresh SQLite store, whose turns wait at `gate`.
fn gated_dispatcher(slots: usize, gate: &Arc<Gate>) -> (Arc<Dispatcher>, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::clone(gate) as Arc<dyn TurnHandler>,
        DispatcherSettings {
            max_concurrent_turns: slots,
            debounce: Duration::ZERO,
            wake_ups: WakeUpSettings::default(),
        },
        Arc::new(Metrics::new()),
    );
    (dispatcher, store, dir)
}

fn closed_gate() -> Arc<Gate> {
    Arc::new(Gate {
        open: tokio::sync::Semaphore::new(0),
        seen: AtomicUsize::new(0),
    })
}

async fn wait_for_turns(gate: &Gate, turns: usize) {
    let seen = async {
        while gate.seen.load(Ordering::SeqCst) < turns {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .unwrap_or_else(|_| panic!("{turns} turns did not start"));
}

#[tokio::test]
async fn a_scan_not_yet_swept_does_not_send_a_new_conversation_the_long_way_while_slots_are_free() {
    let gate = closed_gate();
    let (dispatcher, _store, _dir) = gated_dispatcher(8, &gate);
    // What the periodic scan does before the feeder has swept: work may wait, unseen.
    dispatcher.slots.add_backlog();
    assert!(
        dispatcher.reserve(&message(0).lane).is_some(),
        "a webhook for an idle conversation claims its turn in its own commit while slots are free"
    );
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_conversation_that_left_for_lack_of_a_slot_gets_the_next_one_before_a_newcomer() {
    freed_slot_goes_to_the_waiting_conversation(false).await;
}

#[tokio::test]
async fn a_conversation_found_waiting_for_a_slot_gets_the_next_one_before_a_newcomer() {
    freed_slot_goes_to_the_waiting_conversation(true).await;
}

/// One slot, busy; a second conversation's work waits in the store (`swept`: and the feeder
/// has looked and found no slot for it). When the slot frees, a newcomer does not get it.
async fn freed_slot_goes_to_the_waiting_conversation(swept: bool) {
    let gate = closed_gate();
    let (dispatcher, store, _dir) = gated_dispatcher(1, &gate);
    let record = |i: usize| {
        let store = store.clone();
        async move {
            store
                .record(Batch {
                    messages: vec![message(i)],
                    ..Batch::default()
                })
                .await
                .unwrap()
                .new_pending
        }
    };
    // The one slot is busy with the first conversation's turn.
    for lane in record(0).await {
        dispatcher.notify(lane);
    }
    wait_for_turns(&gate, 1).await;
    // The second's lane finds no slot and leaves its message to the store.
    for lane in record(1).await {
        dispatcher.notify(lane);
    }
    let left = async {
        while dispatcher.live_lanes() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), left)
        .await
        .expect("the second lane leaves its work to the store");
    if swept {
        dispatcher.resume().await.unwrap();
    }
    // The first turn ends. While its slot is free (before the feeder, which reads the store
    // first, has handed it on), a newcomer asks for it.
    gate.open.add_permits(1);
    let freed = async {
        loop {
            let (_, _, free, _) = dispatcher.slots.feed_view();
            if free == 1 || gate.seen.load(Ordering::SeqCst) >= 2 {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), freed)
        .await
        .expect("the first turn ends");
    assert!(
        dispatcher.reserve(&message(2).lane).is_none(),
        "a newcomer does not take the slot owed to the conversation waiting for one"
    );
    // The slot goes to the waiting conversation.
    wait_for_turns(&gate, 2).await;
    gate.open.add_permits(1);
    let swept = async {
        loop {
            if let Some(reservation) = dispatcher.reserve(&message(2).lane) {
                return reservation;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let reservation = tokio::time::timeout(Duration::from_secs(10), swept)
        .await
        .expect("once nobody waits, a newcomer takes a free slot at once");
    drop(reservation);
    gate.open.add_permits(10);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn turns_are_counted_by_the_commit_that_claimed_them() {
    let gate = closed_gate();
    let (dispatcher, _store, _dir) = gated_dispatcher(1, &gate);
    let claimed = |by| {
        dispatcher
            .metrics
            .turns_claimed
            .get_or_create(&metrics::ClaimLabels { by })
            .get()
    };
    let from = |user: usize, i: usize| {
        let mut m = message(i);
        m.lane.user = format!("u{user:06}");
        Batch {
            messages: vec![m],
            ..Batch::default()
        }
    };
    // An idle conversation: its webhook's commit claims the turn.
    dispatcher.accept(from(0, 1)).await.unwrap();
    wait_for_turns(&gate, 1).await;
    assert_eq!(claimed(metrics::ClaimedBy::Webhook), 1);
    // Its next message arrives while that turn runs: the turn's close claims the next one.
    dispatcher.accept(from(0, 2)).await.unwrap();
    gate.open.add_permits(1);
    wait_for_turns(&gate, 2).await;
    assert_eq!(claimed(metrics::ClaimedBy::Close), 1);
    // Another conversation finds the only slot busy: its turn is claimed later, on its own.
    dispatcher.accept(from(1, 3)).await.unwrap();
    gate.open.add_permits(1);
    wait_for_turns(&gate, 3).await;
    assert_eq!(claimed(metrics::ClaimedBy::Dispatcher), 1);
    assert_eq!(claimed(metrics::ClaimedBy::Webhook), 1);
    assert_eq!(claimed(metrics::ClaimedBy::Close), 1);
    gate.open.add_permits(10);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}
