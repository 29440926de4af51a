//! The send fence (`SendRefusal`): the store refuses to mark a part `sending` once a person has
//! its conversation, the customer opted out, or an outbox message is no longer this process's
//! to send; whichever process (replica) committed that. On SQLite and PostgreSQL.

use super::both_backends::{batch, lane, message, Backing};
use super::*;
use crate::whatsapp::graph::OutgoingMessage;

/// On PostgreSQL a second replica on the same database; on SQLite the one process.
async fn another_replica(db: &Backing, store: &Store) -> Store {
    match db {
        Backing::Postgres(_) => db.open().await,
        Backing::Sqlite(_) => store.clone(),
    }
}

/// A turn of `u1` with a reply of two parts saved, ready to send.
async fn turn_with_reply(store: &Store) -> i64 {
    store.record(batch(vec![message("a", "u1")])).await.unwrap();
    let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    store
        .save_reply(turn.id, vec!["one".into(), "two".into()])
        .await
        .unwrap();
    turn.id
}

fn opt_change(opt_out: bool, timestamp: i64) -> Batch {
    Batch {
        opt_changes: vec![OptChange {
            lane: lane("u1"),
            message_id: None,
            opt_out,
            source: OptSource::UserPreferences,
            timestamp,
            reply: Vec::new(),
        }],
        ..Batch::default()
    }
}

fn refusal(result: Result<i64, StoreError>) -> Option<SendRefusal> {
    match result {
        Ok(_) => None,
        Err(e) => Some(
            e.send_refusal()
                .unwrap_or_else(|| panic!("expected a refusal, got {e}")),
        ),
    }
}

on_both_backends! {
    async fn a_part_is_refused_once_another_replica_handed_the_conversation_to_a_person(db: Backing) {
        let store = db.open().await;
        let turn_id = turn_with_reply(&store).await;
        store.mark_part_sending(turn_id, 0).await.unwrap();
        store.mark_part_sent(turn_id, 0, "wamid.0".into()).await.unwrap();

        let operator = another_replica(&db, &store).await;
        assert!(operator.hand_over(lane("u1"), "operator", None, Vec::new()).await.unwrap());

        assert_eq!(
            refusal(store.mark_part_sending(turn_id, 1).await),
            Some(SendRefusal::WithPerson)
        );
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert_eq!(parts[1].sending_since, None, "nothing was marked");
    }

    async fn a_part_goes_out_again_once_the_conversation_is_back_with_the_agent(db: Backing) {
        let store = db.open().await;
        let turn_id = turn_with_reply(&store).await;
        let operator = another_replica(&db, &store).await;
        operator.hand_over(lane("u1"), "keyword", None, Vec::new()).await.unwrap();
        assert!(refusal(store.mark_part_sending(turn_id, 0).await).is_some());
        operator.release(lane("u1"), "operator").await.unwrap();
        store.mark_part_sending(turn_id, 0).await.unwrap();
    }

    async fn a_part_is_refused_once_the_customer_opted_out_on_another_replica(db: Backing) {
        let store = db.open().await;
        let turn_id = turn_with_reply(&store).await;
        let other = another_replica(&db, &store).await;
        other.record(opt_change(true, 1_700_000_100)).await.unwrap();
        assert_eq!(
            refusal(store.mark_part_sending(turn_id, 0).await),
            Some(SendRefusal::OptedOut)
        );
    }

    async fn a_new_reply_is_saved_with_its_first_part_marked_sending_in_the_same_commit(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        let reply = || vec![OutgoingMessage::text("one"), OutgoingMessage::text("two")];
        let (parts, first) = store.save_reply_marking_first(turn.id, reply()).await.unwrap();
        assert!(matches!(first, FirstPart::Marked { .. }), "{first:?}");
        assert_eq!(parts.len(), 2);
        let other = another_replica(&db, &store).await;
        let stored = other.load_reply(turn.id).await.unwrap().unwrap();
        assert!(stored[0].sending_since.is_some(), "the first part is marked");
        assert_eq!(stored[1].sending_since, None, "the second waits for its own mark");
        // Saved before (a resumed turn): that reply, nothing marked again.
        let (again, first) = store.save_reply_marking_first(turn.id, reply()).await.unwrap();
        assert_eq!(first, FirstPart::Unmarked);
        assert_eq!(again.len(), 2);
    }

    async fn a_new_reply_for_a_conversation_a_person_took_is_saved_but_nothing_marked(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        let operator = another_replica(&db, &store).await;
        operator.hand_over(lane("u1"), "operator", None, Vec::new()).await.unwrap();
        let (_, first) = store
            .save_reply_marking_first(turn.id, vec![OutgoingMessage::text("one")])
            .await
            .unwrap();
        assert_eq!(first, FirstPart::Refused(SendRefusal::WithPerson));
        let stored = store.load_reply(turn.id).await.unwrap().unwrap();
        assert_eq!(stored[0].sending_since, None, "nothing was marked");
    }

    async fn the_agents_own_handoff_notice_still_goes_out(db: Backing) {
        // `handoff_to_human`: the turn hands its conversation over and its reply is the notice.
        let store = db.open().await;
        let turn_id = turn_with_reply(&store).await;
        assert!(store.hand_over(lane("u1"), "tool", None, Vec::new()).await.unwrap());
        store.mark_part_sending(turn_id, 0).await.unwrap();
    }

    async fn an_operator_reply_goes_out_while_a_person_has_the_conversation(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        store.hand_over(lane("u1"), "operator", None, Vec::new()).await.unwrap();
        let id = store
            .queue_operator_reply(lane("u1"), "hello".into(), vec!["hello".into()])
            .await
            .unwrap()
            .expect("queued");
        let pending = store.pending_outbox().await.unwrap();
        assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), vec![id]);
        store.mark_part_sending(outbox_key(id), 0).await.unwrap();
    }

    async fn an_operator_reply_cancelled_by_an_opt_out_sends_nothing_more(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let id = store
            .queue_operator_reply(lane("u1"), "a b".into(), vec!["a".into(), "b".into()])
            .await
            .unwrap()
            .expect("queued");
        store.pending_outbox().await.unwrap();
        let key = outbox_key(id);
        store.mark_part_sending(key, 0).await.unwrap();
        store.mark_part_sent(key, 0, "wamid.op.0".into()).await.unwrap();

        let other = another_replica(&db, &store).await;
        other.record(opt_change(true, 1_700_000_100)).await.unwrap();
        assert_eq!(
            refusal(store.mark_part_sending(key, 1).await),
            Some(SendRefusal::OutboxClosed)
        );
    }
}

/// PostgreSQL: replica A claimed an operator reply and sent its first part, then stalled past
/// its claim; replica B claimed the message and sends the rest. A sends nothing more, and each
/// part is marked (so sent) by exactly one replica.
#[tokio::test]
async fn an_expired_outbox_claim_taken_by_another_replica_stops_the_first_replicas_sends() {
    let Some(db) = Backing::postgres().await else {
        return;
    };
    let Backing::Postgres(pg) = &db else {
        unreachable!()
    };
    let a = db.open().await;
    let b = db.open().await;
    a.record(batch(vec![message("a", "u1")])).await.unwrap();
    let id = a
        .queue_operator_reply(lane("u1"), "a b".into(), vec!["a".into(), "b".into()])
        .await
        .unwrap()
        .expect("queued");
    let key = outbox_key(id);
    assert_eq!(a.pending_outbox().await.unwrap().len(), 1, "A claims it");
    assert!(
        b.pending_outbox().await.unwrap().is_empty(),
        "not while A's claim holds"
    );
    a.mark_part_sending(key, 0).await.unwrap();
    a.mark_part_sent(key, 0, "wamid.op.0".into()).await.unwrap();

    pg.execute("UPDATE outbox SET claimed_until = 0").await; // A stalled past its claim
    let taken = b.pending_outbox().await.unwrap();
    assert_eq!(taken.len(), 1, "B claims it");
    assert_eq!(taken[0].parts[0].outbound_id.as_deref(), Some("wamid.op.0"));
    b.mark_part_sending(key, 1).await.unwrap();

    assert_eq!(
        refusal(a.mark_part_sending(key, 1).await),
        Some(SendRefusal::OutboxClaimLost)
    );
    b.mark_part_sent(key, 1, "wamid.op.1".into()).await.unwrap();
    b.finish_outbox(id, None, None).await.unwrap();
    assert_eq!(
        refusal(a.mark_part_sending(key, 1).await),
        Some(SendRefusal::OutboxClosed),
        "and once B closed it"
    );
}

/// PostgreSQL: a claim that ran out with nobody else taking it is still not enough to send:
/// the next poll claims the message again first.
#[tokio::test]
async fn an_outbox_part_is_not_marked_under_a_claim_that_ran_out() {
    let Some(db) = Backing::postgres().await else {
        return;
    };
    let Backing::Postgres(pg) = &db else {
        unreachable!()
    };
    let a = db.open().await;
    a.record(batch(vec![message("a", "u1")])).await.unwrap();
    let id = a
        .queue_operator_reply(lane("u1"), "a".into(), vec!["a".into()])
        .await
        .unwrap()
        .expect("queued");
    a.pending_outbox().await.unwrap();
    pg.execute("UPDATE outbox SET claimed_until = 0").await;
    assert_eq!(
        refusal(a.mark_part_sending(outbox_key(id), 0).await),
        Some(SendRefusal::OutboxClaimLost)
    );
    assert_eq!(a.pending_outbox().await.unwrap().len(), 1, "claimed again");
    a.mark_part_sending(outbox_key(id), 0).await.unwrap();
}
