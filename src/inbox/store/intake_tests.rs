//! A webhook's commit that also starts the turn of an idle conversation.

use super::both_backends::{batch, lane, message};
use super::*;

fn ids(turn: &Turn) -> Vec<&str> {
    turn.messages
        .iter()
        .map(|m| m.message_id.as_str())
        .collect()
}

on_both_backends! {
    async fn the_commit_that_records_a_message_can_start_its_turn(db: Backing) {
        let store = db.open().await;
        let (outcome, turns) = store
            .record_and_claim(
                batch(vec![message("a", "u1"), message("x", "u2")]),
                vec![lane("u1")],
            )
            .await
            .unwrap();

        assert_eq!(turns.len(), 1);
        assert_eq!(ids(&turns[0]), ["a"]);
        assert_eq!(turns[0].messages[0].raw["text"]["body"], "hi a");
        assert_eq!(turns[0].attempt, 0);
        assert_eq!(outcome.new_pending_messages, 2);
        assert_eq!(
            outcome.new_pending,
            vec![lane("u2")],
            "only the lane without a turn needs a notification"
        );
        // The turn is in the store: finishing it leaves nothing for u1, and u2 is still pending.
        store
            .finish_turn(turns[0].id, TurnOutcome::Done)
            .await
            .unwrap();
        assert!(store.claim_turn(lane("u1")).await.unwrap().is_none());
        assert_eq!(store.open_lanes().await.unwrap(), vec![lane("u2")]);
    }


    async fn the_started_turn_takes_older_pending_messages_first(db: Backing) {
        let store = db.open().await;
        // A concurrent webhook's message, recorded without a turn.
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let (_, turns) = store
            .record_and_claim(batch(vec![message("b", "u1")]), vec![lane("u1")])
            .await
            .unwrap();

        assert_eq!(ids(&turns[0]), ["a", "b"]);
        assert_eq!(turns[0].messages[0].raw["text"]["body"], "hi a");
    }


    async fn a_conversation_with_an_interrupted_turn_gets_no_new_turn_before_it_resumes(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let interrupted = store.claim_turn(lane("u1")).await.unwrap().unwrap();

        let (outcome, turns) = store
            .record_and_claim(batch(vec![message("b", "u1")]), vec![lane("u1")])
            .await
            .unwrap();

        assert!(turns.is_empty());
        assert_eq!(outcome.new_pending, vec![lane("u1")]);
        let resumed = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        assert_eq!(resumed.id, interrupted.id);
        assert_eq!(ids(&resumed), ["a"]);
    }


    async fn a_redelivery_starts_no_turn(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let first = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        store
            .finish_turn(first.id, TurnOutcome::Done)
            .await
            .unwrap();

        let (outcome, turns) = store
            .record_and_claim(batch(vec![message("a", "u1")]), vec![lane("u1")])
            .await
            .unwrap();

        assert!(turns.is_empty());
        assert_eq!(outcome.duplicates, 1);
        assert!(store.claim_turn(lane("u1")).await.unwrap().is_none());
        assert_eq!(store.backlog().await.unwrap().open_messages, 0);
    }


    async fn parsed_json_given_with_the_batch_is_used_as_is(db: Backing) {
        let store = db.open().await;
        let mut given = message("a", "u1");
        given.json = Some(serde_json::json!({"given": true}));
        let with_json = batch(vec![given]);
        let (_, turns) = store
            .record_and_claim(with_json, vec![lane("u1")])
            .await
            .unwrap();

        assert_eq!(turns[0].messages[0].raw, serde_json::json!({"given": true}));
    }

}
