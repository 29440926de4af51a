//! What only several replicas on one PostgreSQL database do: leases, fencing, takeover,
//! heartbeats, wake-ups. The schema is tested in `schema_tests.rs`, reaching the server in
//! `connect_tests.rs`; the behaviour both backends share in `store/tests.rs` and
//! `store/intake_tests.rs` on both.

use super::lease;
use super::testdb::TestDb;
use crate::inbox::store::both_backends::{batch, lane, message};
use crate::inbox::store::{Batch, StatusUpdate, Store, StoreError, TurnOutcome};
use crate::memory::MemoryEntry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_claiming_one_conversation_at_once_never_both_get_it() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (a, b) = (db.open_store().await, db.open_store().await);
    for i in 0..20 {
        let user = format!("u{i}");
        a.record(batch(vec![message(&format!("m{i}"), &user)]))
            .await
            .unwrap();
        let (ra, rb) = tokio::join!(a.claim_turn(lane(&user)), b.claim_turn(lane(&user)));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra.is_some() != rb.is_some(),
            "exactly one replica takes conversation {user}: {ra:?} / {rb:?}"
        );
        // While the winner holds it, the other cannot take it either, however often it asks.
        let loser = if ra.is_some() { &b } else { &a };
        assert!(loser.claim_turn(lane(&user)).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_a_higher_fence_and_the_old_owner_is_refused() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (old, new) = (db.open_store().await, db.open_store().await);
    old.record(batch(vec![message("m1", "u1")])).await.unwrap();
    let turn = old.claim_turn(lane("u1")).await.unwrap().expect("a turn");
    old.save_reply(turn.id, vec!["one".into(), "two".into()])
        .await
        .unwrap();
    old.mark_part_sending(turn.id, 0).await.unwrap();
    let old_fence: i64 = db
        .query_text("SELECT fence FROM leases")
        .await
        .parse()
        .unwrap();
    assert!(
        new.claim_turn(lane("u1")).await.unwrap().is_none(),
        "a live lease keeps the conversation with its replica"
    );

    // The old owner is paused past its lease in its Graph call (a long GC, a frozen VM): the
    // new one takes over.
    db.expire_leases().await;
    let resumed = new
        .claim_turn(lane("u1"))
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!(
        resumed.id, turn.id,
        "the interrupted turn is resumed, not duplicated"
    );
    assert_eq!(resumed.attempt, 1);
    let new_fence: i64 = db
        .query_text("SELECT fence FROM leases")
        .await
        .parse()
        .unwrap();
    assert!(new_fence > old_fence, "{new_fence} > {old_fence}");

    assert!(
        !old.holds_turn(turn.id).await.unwrap(),
        "the old owner knows"
    );
    assert!(new.holds_turn(turn.id).await.unwrap());
    // Meta's answer reaches the old owner: the fact is kept (part one is not sent twice), but
    // the old owner is told to stop.
    let late = old.mark_part_sent(turn.id, 0, "wamid.old".into()).await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    // Every other write it still tries is refused, and changes nothing.
    // A turn's memory waits for the statement that saves its reply: taken here, refused there
    // (never written: see the memory read below).
    old.append_memory(
        "wa_u1".into(),
        turn.id,
        vec![MemoryEntry::assistant("stale", 1_700_000_000)],
    )
    .await
    .unwrap();
    let refused = [
        old.mark_part_sending(turn.id, 1).await.err(),
        old.mark_part_failed(turn.id, 1, "stale".into()).await.err(),
        old.save_reply(turn.id, vec!["stale".into()]).await.err(),
        old.finish_turn(turn.id, TurnOutcome::Done).await.err(),
    ];
    for (i, e) in refused.into_iter().enumerate() {
        assert!(
            matches!(e, Some(StoreError::LeaseLost { .. })),
            "write {i} refused with LeaseLost: {e:?}"
        );
    }
    let parts = new.load_reply(turn.id).await.unwrap().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.old"));
    assert_eq!(parts[1].text, "two");
    assert_eq!(
        (parts[1].sending_since, parts[1].outbound_id.as_deref()),
        (None, None)
    );
    assert!(new
        .memory_window("wa_u1".into(), 10, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.query_text(&format!("SELECT state FROM turns WHERE id = {}", turn.id))
            .await,
        "running",
        "the old owner's finish did not close the new owner's turn"
    );
    // The new owner's writes go through.
    new.mark_part_sending(turn.id, 1).await.unwrap();
    new.mark_part_sent(turn.id, 1, "wamid.new".into())
        .await
        .unwrap();
    new.finish_turn(turn.id, TurnOutcome::Done).await.unwrap();
    assert_eq!(
        db.query_text("SELECT state FROM inbound WHERE message_id = 'm1'")
            .await,
        "done"
    );
}

#[tokio::test]
async fn a_part_a_dead_replica_left_sending_waits_from_the_takeover_and_is_settled_by_its_status() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let dead = db.open_store().await;
    dead.record(batch(vec![message("m1", "u1")])).await.unwrap();
    let turn = dead.claim_turn(lane("u1")).await.unwrap().unwrap();
    dead.save_reply(turn.id, vec!["hi".into()]).await.unwrap();
    let marked = dead.mark_part_sending(turn.id, 0).await.unwrap();
    let callback = dead.part_ref(turn.id, 0).callback_data();
    drop(dead); // kill -9: the Graph call's answer is never recorded
    db.expire_leases().await;

    let heir = db.open_store().await;
    let resumed = heir.claim_turn(lane("u1")).await.unwrap().unwrap();
    let parts = heir.load_reply(resumed.id).await.unwrap().unwrap();
    assert!(parts[0].sending_since.is_some(), "left sending");
    let (_, held) = heir.postgres().inner().leases.by_turn(resumed.id).unwrap();
    let taken_over_at = held.taken_over_at.expect("a takeover is remembered");
    assert!(taken_over_at >= marked);
    let from = heir.confirm_window_start(resumed.id).await;
    assert!(
        from >= taken_over_at,
        "the confirm window runs from the takeover"
    );
    assert_eq!(
        heir.part_ref(turn.id, 0).callback_data(),
        callback,
        "one id per database"
    );

    // Meta's status notification may reach any replica: a third one records it.
    let third = db.open_store().await;
    third
        .record(Batch {
            statuses: vec![StatusUpdate {
                message_id: "wamid.out.1".into(),
                recipient: Some("u1".into()),
                status: "sent".into(),
                rank: 1,
                errors: None,
                pricing: None,
                callback_data: Some(callback),
            }],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        heir.part_outbound_id(turn.id, 0).await.unwrap().as_deref(),
        Some("wamid.out.1")
    );
}

#[tokio::test]
async fn the_heartbeat_keeps_a_long_turns_conversation_and_forgets_one_taken_over() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    store
        .record(batch(vec![
            message("m1", "u1"),
            message("m2", "u2"),
            message("m3", "u3"),
        ]))
        .await
        .unwrap();
    let t1 = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    let _t2 = store.claim_turn(lane("u2")).await.unwrap().unwrap();
    let _t3 = store.claim_turn(lane("u3")).await.unwrap().unwrap();
    let fence_of = |user: &'static str| {
        let db = &db;
        async move {
            db.query_text(&format!(
                "SELECT fence FROM leases WHERE customer = '{user}'"
            ))
            .await
            .parse::<i64>()
            .unwrap()
        }
    };
    let u2 = fence_of("u2").await;
    // u1's lease is about to run out during a long model call; u2's was taken by another
    // replica meanwhile (its fence moved on); u3's close gave it up, committed but not yet
    // seen by this process's map (the heartbeat ran in between): not a take-over.
    db.execute(
        "UPDATE leases SET expires_at = now() + interval '1 second' WHERE customer = 'u1';
         UPDATE leases SET fence = nextval('lease_fence'), owner = 'elsewhere' WHERE customer = 'u2';
         UPDATE leases SET owner = NULL, expires_at = now() WHERE customer = 'u3';",
    )
    .await;
    let taken_over = lease::beat(store.postgres().inner()).await.unwrap();
    assert_eq!(taken_over, [u2], "only u2 was taken over");
    let left: f64 = db
        .query_text(
            "SELECT extract(epoch FROM expires_at - now()) FROM leases WHERE customer = 'u1'",
        )
        .await
        .parse()
        .unwrap();
    assert!(left > 10.0, "extended to a full lease: {left} s left");
    assert!(
        !store.postgres().inner().leases.fences().contains(&u2),
        "u2 forgotten"
    );
    store.finish_turn(t1.id, TurnOutcome::Done).await.unwrap();
    assert_eq!(
        db.query_text("SELECT COALESCE(owner, 'free') FROM leases WHERE customer = 'u1'")
            .await,
        "free",
        "a finished conversation's lease is given back at once"
    );
}

#[tokio::test]
async fn a_replicas_conversations_go_to_the_others_when_it_stops_or_its_leases_expire() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (a, b) = (db.open_store().await, db.open_store().await);
    a.record(batch(vec![message("m1", "u1"), message("m2", "u2")]))
        .await
        .unwrap();
    let _t1 = a.claim_turn(lane("u1")).await.unwrap().unwrap();
    let _t2 = a.claim_turn(lane("u2")).await.unwrap().unwrap();
    // The feeder of another replica does not even look at conversations a live replica holds.
    assert!(b.open_lanes_after(None, 10).await.unwrap().is_empty());
    assert_eq!(
        a.open_lanes_after(None, 10).await.unwrap(),
        vec![lane("u1"), lane("u2")]
    );

    // A graceful stop gives them back at once...
    a.release_leases().await.unwrap();
    assert_eq!(
        b.open_lanes_after(None, 10).await.unwrap(),
        vec![lane("u1"), lane("u2")]
    );
    let resumed = b.claim_turn(lane("u1")).await.unwrap().unwrap();
    assert_eq!(resumed.attempt, 1, "the interrupted turn is resumed");

    // ...and replicas that die (b, kill -9) or stall (a) leave them to the others once their
    // leases expire.
    let _t2 = a.claim_turn(lane("u2")).await.unwrap().unwrap();
    drop(b);
    db.expire_leases().await;
    let c = db.open_store().await;
    assert_eq!(
        c.open_lanes_after(None, 10).await.unwrap(),
        vec![lane("u1"), lane("u2")],
        "expired leases are anyone's"
    );
    assert!(c.claim_turn(lane("u1")).await.unwrap().is_some());
}

#[tokio::test]
async fn wake_ups_hear_what_another_process_notifies() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    let mut wake_ups = store.wake_ups().await.unwrap();
    db.execute(&format!(
        "SELECT pg_notify('{}', '{}'); NOTIFY {};",
        super::WAKE_CHANNEL,
        super::wake_payload(&lane("u1")),
        super::WAKE_CHANNEL
    ))
    .await;
    let within = std::time::Duration::from_secs(5);
    let first = tokio::time::timeout(within, wake_ups.next()).await;
    assert_eq!(first.unwrap(), Some(super::WakeUp::Lane(lane("u1"))));
    let second = tokio::time::timeout(within, wake_ups.next()).await;
    assert_eq!(
        second.unwrap(),
        Some(super::WakeUp::Any),
        "no payload: sweep"
    );
}

#[tokio::test]
async fn on_sqlite_no_wake_up_ever_comes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), crate::inbox::store::Durability::Normal).unwrap();
    let mut wake_ups = store.wake_ups().await.unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_millis(50), wake_ups.next()).await;
    assert!(waited.is_err(), "one process owns an SQLite database");
}

#[tokio::test]
async fn a_first_claim_is_no_takeover_but_a_lease_handed_back_at_shutdown_is() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (a, b) = (db.open_store().await, db.open_store().await);
    a.record(batch(vec![message("m1", "u1")])).await.unwrap();
    let turn = a.claim_turn(lane("u1")).await.unwrap().unwrap();
    let (_, held) = a.postgres().inner().leases.by_turn(turn.id).unwrap();
    assert_eq!(
        held.taken_over_at, None,
        "nobody held the conversation before: its parts need no confirm window"
    );
    // a stops with the turn running: the next replica takes an interrupted turn over.
    a.release_leases().await.unwrap();
    let resumed = b.claim_turn(lane("u1")).await.unwrap().unwrap();
    assert_eq!(resumed.id, turn.id);
    let (_, held) = b.postgres().inner().leases.by_turn(resumed.id).unwrap();
    assert!(
        held.taken_over_at.is_some(),
        "parts the stopped replica left sending wait for their status"
    );
}

#[tokio::test]
async fn parts_held_for_the_window_are_found_by_the_conversations_next_turn() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    store
        .record(batch(vec![message("m1", "u1")]))
        .await
        .unwrap();
    let first = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    assert!(store.held_turns(lane("u1")).await.unwrap().is_empty());
    store
        .save_reply(first.id, vec!["later".into()])
        .await
        .unwrap();
    store
        .hold_for_window(lane("u1"), first.id, 0, None, 0)
        .await
        .unwrap();
    assert_eq!(store.held_turns(lane("u1")).await.unwrap(), vec![first.id]);
    // Closed and claimed again in one commit, then by a claim of its own: both look.
    store
        .record(batch(vec![message("m2", "u1")]))
        .await
        .unwrap();
    let second = store
        .finish_and_claim(first.id, TurnOutcome::Done, lane("u1"))
        .await
        .unwrap()
        .expect("m2 is the next turn");
    assert_eq!(store.held_turns(lane("u1")).await.unwrap(), vec![first.id]);
    store
        .finish_turn(second.id, TurnOutcome::Done)
        .await
        .unwrap();
    store
        .record(batch(vec![message("m3", "u1")]))
        .await
        .unwrap();
    let _third = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    assert_eq!(store.held_turns(lane("u1")).await.unwrap(), vec![first.id]);
}
