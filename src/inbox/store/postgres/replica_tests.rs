//! What several replicas on one PostgreSQL database share beyond the message path: the
//! retention purge (one replica, once per slot), the channel's rate limit (never more than
//! the cap in any window, whichever replica sends) with Meta's 130429 pausing all of them,
//! and the outbox (each message sent by one replica).

use super::retention::{RetentionRun, RetentionSkipped, INBOX_RETENTION};
use super::testdb::TestDb;
use crate::inbox::store::{Batch, InboundState, NewInbound, Store, TurnOutcome};
use crate::inbox::LaneKey;
use crate::whatsapp::graph::shared_window::{Settlement, SharedWindow, SlotRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn lane(user: &str) -> LaneKey {
    LaneKey {
        phone_number_id: "PNID".into(),
        user: user.into(),
    }
}

fn text(id: &str, user: &str) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(user),
        display_phone_number: "1".into(),
        contact_name: None,
        kind: "text".into(),
        timestamp: chrono::Utc::now().timestamp(),
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"{id}"}}}}"#),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

async fn replicas(db: &TestDb, n: usize) -> Vec<Store> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(
            Store::open_postgres(&db.database_url())
                .await
                .expect("a replica opens"),
        );
    }
    stores
}

/// Record `ids` for `user` and answer them in one turn.
async fn answered(store: &Store, user: &str, ids: &[&str]) {
    store
        .record(Batch {
            messages: ids.iter().map(|id| text(id, user)).collect(),
            ..Batch::default()
        })
        .await
        .unwrap();
    let turn = store.claim_turn(lane(user)).await.unwrap().expect("a turn");
    store.save_reply(turn.id, vec!["ok".into()]).await.unwrap();
    store
        .mark_part_sent(turn.id, 0, format!("wamid.{user}"))
        .await
        .unwrap();
    store.finish_turn(turn.id, TurnOutcome::Done).await.unwrap();
}

#[tokio::test]
async fn two_replicas_purging_at_once_purge_once_and_keep_what_is_promised() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let stores = replicas(&db, 2).await;
    // Old: a conversation answered twice, and one whose last message is unanswered.
    answered(&stores[0], "old", &["o1", "o2"]).await;
    answered(&stores[0], "old", &["o3"]).await;
    stores[0]
        .record(Batch {
            messages: vec![text("p1", "waiting")],
            ..Batch::default()
        })
        .await
        .unwrap();
    // Nine days ago for everything so far; then a message of today.
    let nine_days = 9 * 24 * 3600 * 1000_i64;
    db.execute(&format!(
        "UPDATE inbound SET received_at = received_at - {nine_days};
         UPDATE turns SET started_at = started_at - {nine_days};
         UPDATE outbound_status SET updated_at = updated_at - {nine_days};"
    ))
    .await;
    answered(&stores[0], "new", &["n1"]).await;

    let now = chrono::Utc::now().timestamp_millis();
    let (a, b) = tokio::join!(
        stores[0].purge_old_inbox(now),
        stores[1].purge_old_inbox(now)
    );
    let outcomes = [a.unwrap().unwrap(), b.unwrap().unwrap()];
    let ran: Vec<&RetentionRun> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(ran.len(), 1, "exactly one replica purged: {outcomes:?}");
    assert_eq!(
        ran[0].messages, 2,
        "o1 and o2 went; o3 is its conversation's newest"
    );
    assert_eq!(ran[0].turns, 1, "the first turn went, with its part");
    assert!(outcomes.iter().any(|o| matches!(
        o,
        Err(RetentionSkipped::Busy | RetentionSkipped::AlreadyRan)
    )));
    assert_eq!(
        db.query_text("SELECT string_agg(message_id, ',' ORDER BY seq) FROM inbound")
            .await,
        "o3,p1,n1",
        "the newest of each conversation, the unanswered one, and today's stay"
    );
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM inbound_raw").await,
        "3",
        "the JSON went with its message"
    );
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM maintenance_runs").await,
        "1"
    );

    // The same slot again, on either replica: nothing runs.
    for store in &stores {
        assert_eq!(
            store.purge_old_inbox(now).await.unwrap(),
            Some(Err(RetentionSkipped::AlreadyRan))
        );
    }
    // A redelivery of a message younger than the retention is still a duplicate.
    let again = stores[1]
        .record(Batch {
            messages: vec![text("n1", "new")],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
    assert!(INBOX_RETENTION >= Duration::from_secs(8 * 24 * 3600));
}

/// Every span of `window` (checked from every send) holds at most `max` sends.
fn assert_no_span_over_the_cap(sends: &[Instant], max: usize, window: Duration) {
    for (i, &from) in sends.iter().enumerate() {
        let in_span = sends[i..]
            .iter()
            .take_while(|&&t| t < from + window)
            .count();
        assert!(
            in_span <= max,
            "{in_span} sends within {window:?} of send {i} (cap {max})"
        );
    }
}

#[tokio::test]
async fn two_replicas_sharing_the_rate_limit_never_send_more_than_the_cap_in_any_window() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let stores = replicas(&db, 2).await;
    let (max, window) = (4_u32, Duration::from_secs(1));
    let limiters: Vec<Arc<SharedWindow>> = stores
        .iter()
        .map(|s| {
            Arc::new(SharedWindow::with_limit(
                s.shared_rate_limit().expect("shared on PostgreSQL").0,
                max,
                window,
            ))
        })
        .collect();
    // Sends arrive at random moments on either replica, bursts included.
    let start = tokio::time::Instant::now();
    let arrivals: Vec<(usize, Duration)> = (0..22)
        .map(|n| {
            let at = if n % 5 == 0 {
                0
            } else {
                rand::random_range(0..2_500)
            };
            (n % 2, Duration::from_millis(at))
        })
        .collect();
    let tasks: Vec<_> = arrivals
        .into_iter()
        .map(|(replica, at)| {
            let limiter = Arc::clone(&limiters[replica]);
            tokio::spawn(async move {
                tokio::time::sleep_until(start + at).await;
                limiter.wait_for_room().await;
                Instant::now()
            })
        })
        .collect();
    let mut sends = Vec::new();
    for task in tasks {
        sends.push(task.await.expect("a send"));
    }
    sends.sort();
    assert_eq!(sends.len(), 22, "every send went, none dropped");
    assert_no_span_over_the_cap(&sends, max as usize, window);
    // And the cap is used, not wasted: 22 sends at 4 per second need about 5 windows (plus
    // the leases of grants nobody settled yet), not twice that.
    let spread = sends[21] - sends[0];
    assert!(spread < Duration::from_secs(9), "took {spread:?}");
}

#[tokio::test]
async fn the_shared_window_counts_what_grants_used_until_they_age_out() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let stores = replicas(&db, 1).await;
    let slots = stores[0].shared_rate_limit().expect("shared").0;
    let ask = |want, settle| SlotRequest {
        want,
        max_messages: 10,
        window: Duration::from_millis(300),
        lease: Duration::from_secs(1),
        settle,
    };
    let first = slots.reserve(ask(8, None)).await.unwrap();
    assert_eq!(first.granted, 8);
    let rest = slots.reserve(ask(8, None)).await.unwrap();
    assert_eq!(rest.granted, 2, "ten in the window at most");
    // The first grant is handed back having used three slots within 5 ms: five come back.
    let settle = Settlement {
        grant_id: first.id,
        used: 3,
        used_within: Duration::from_millis(5),
    };
    let again = slots.reserve(ask(8, Some(settle))).await.unwrap();
    assert_eq!(again.granted, 5);
    let full = slots.reserve(ask(1, None)).await.unwrap();
    assert_eq!(full.granted, 0, "the window is full");
    assert!(full.retry_in > Duration::ZERO);
    // The settled grant's three leave the window 300 ms after their last use; the other
    // grants (leases of 1 s) still count.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = slots.reserve(ask(8, None)).await.unwrap();
    assert_eq!(later.granted, 3);
}

#[tokio::test]
async fn a_130429_on_one_replica_pauses_the_other() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let stores = replicas(&db, 2).await;
    let limiter = |store: &Store| {
        SharedWindow::with_limit(
            store.shared_rate_limit().expect("shared").0,
            1000,
            Duration::from_secs(1),
        )
    };
    let (a, b) = (limiter(&stores[0]), limiter(&stores[1]));
    b.wait_for_room().await; // B sends freely before
    a.throttled(Duration::from_millis(1500)).await;
    let paused_at = Instant::now();
    b.wait_for_room().await;
    let waited = paused_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1300),
        "B went after {waited:?}: B had grant slots left from before, or the pause was not shared"
    );
    assert!(waited < Duration::from_secs(4), "B waited {waited:?}");
}

#[tokio::test]
async fn an_outbox_message_is_sent_by_one_replica_and_taken_over_when_it_dies() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let stores = replicas(&db, 2).await;
    stores[0]
        .record(Batch {
            messages: vec![text("m1", "u1")],
            ..Batch::default()
        })
        .await
        .unwrap();
    let id = stores[0]
        .queue_operator_reply(lane("u1"), "first".into(), vec!["first".into()])
        .await
        .unwrap()
        .expect("queued");
    stores[0]
        .queue_operator_reply(lane("u1"), "second".into(), vec!["second".into()])
        .await
        .unwrap()
        .expect("queued");
    let a = stores[0].pending_outbox().await.unwrap();
    assert_eq!(a.len(), 2, "replica A claims both, in order");
    assert_eq!(a[0].parts[0].text, "first");
    assert!(
        stores[1].pending_outbox().await.unwrap().is_empty(),
        "replica B sends none of A's"
    );
    assert_eq!(
        stores[0].pending_outbox().await.unwrap().len(),
        2,
        "A's poll renews"
    );
    stores[0].finish_outbox(id, None, None).await.unwrap();
    // A dies: its claim runs out, B takes what is left.
    db.execute("UPDATE outbox SET claimed_until = 0").await;
    let b = stores[1].pending_outbox().await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].text, "second");
}
