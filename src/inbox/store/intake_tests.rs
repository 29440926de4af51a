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


    async fn a_flood_in_one_webhook_starts_a_turn_of_the_first_messages_and_the_rest_wait(db: Backing) {
        let store = db.open().await;
        let flood: Vec<NewInbound> = (0..MAX_MESSAGES_PER_TURN + 7)
            .map(|n| message(&format!("m{n:03}"), "u1"))
            .collect();
        let (outcome, turns) = store
            .record_and_claim(batch(flood), vec![lane("u1")])
            .await
            .unwrap();

        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].messages.len(), MAX_MESSAGES_PER_TURN);
        assert_eq!(ids(&turns[0])[0], "m000");
        assert_eq!(outcome.new_pending_messages, MAX_MESSAGES_PER_TURN + 7);
        assert_eq!(outcome.new_pending, vec![lane("u1")], "the rest must be told");
        let next = store
            .finish_and_claim(turns[0].id, TurnOutcome::Done, lane("u1"))
            .await
            .unwrap()
            .expect("the rest in the next turn");
        assert_eq!(next.messages.len(), 7);
        assert_eq!(ids(&next)[0], format!("m{MAX_MESSAGES_PER_TURN:03}"));
    }


    async fn a_message_twice_in_one_webhook_is_recorded_and_answered_once(db: Backing) {
        let store = db.open().await;
        let mut again = message("a", "u1");
        again.raw = r#"{"id":"a","type":"text","text":{"body":"the copy"}}"#.into();
        let (outcome, turns) = store
            .record_and_claim(
                batch(vec![message("a", "u1"), message("b", "u1"), again]),
                vec![lane("u1")],
            )
            .await
            .unwrap();

        assert_eq!(turns.len(), 1);
        assert_eq!(ids(&turns[0]), ["a", "b"], "each message once, in arrival order");
        assert_eq!(
            turns[0].messages[0].raw["text"]["body"], "hi a",
            "the first copy is the one kept"
        );
        assert_eq!(outcome.new_pending_messages, 2);
        assert_eq!(outcome.duplicates, 1);
    }

    async fn a_webhook_for_a_conversation_a_person_has_is_kept_and_starts_no_turn(db: Backing) {
        let store = db.open().await;
        assert!(store
            .hand_over(lane("u1"), "operator", None, Vec::new())
            .await
            .unwrap());
        let (outcome, turns) = store
            .record_and_claim(batch(vec![message("a", "u1")]), vec![lane("u1")])
            .await
            .unwrap();

        assert!(turns.is_empty());
        assert_eq!(outcome.new_skipped, 1);
        assert!(outcome.new_pending.is_empty());
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
