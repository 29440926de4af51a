//! Reply parts (a turn's and an outbox message's): saved once, marked sending and sent, settled
//! by status notifications; on SQLite and PostgreSQL (`on_both_backends!`).

use super::both_backends::{batch, lane, message};
use super::*;

async fn part_left_sending(store: &Store) -> i64 {
    store.record(batch(vec![message("a", "u1")])).await.unwrap();
    let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    store.save_reply(turn.id, vec!["hi".into()]).await.unwrap();
    store.mark_part_sending(turn.id, 0).await.unwrap();
    turn.id
}

fn sent_status(callback: &str) -> Batch {
    Batch {
        statuses: vec![StatusUpdate {
            message_id: "wamid.out.7".into(),
            recipient: Some("u1".into()),
            status: "sent".into(),
            rank: 1,
            errors: None,
            pricing: None,
            callback_data: Some(callback.into()),
        }],
        ..Batch::default()
    }
}

on_both_backends! {
    async fn saving_a_reply_twice_keeps_the_first_text(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        store
            .save_reply(turn.id, vec!["first".into()])
            .await
            .unwrap();
        let parts = store
            .save_reply(turn.id, vec!["second".into()])
            .await
            .unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].text, "first");
    }

    async fn a_status_naming_a_part_left_sending_confirms_it_across_a_restart(db: Backing) {
        let (turn_id, callback) = {
            let store = db.open().await;
            let turn_id = part_left_sending(&store).await;
            let callback = store.part_ref(turn_id, 0).callback_data();
            (turn_id, callback)
        }; // crash: the answer to the send was never recorded
        db.after_crash().await;
        let store = db.open().await;
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert!(parts[0].sending_since.is_some(), "left sending");
        assert_eq!(parts[0].outbound_id, None);

        store.record(sent_status(&callback)).await.unwrap();
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.out.7"));
        assert_eq!(parts[0].sending_since, None);
    }

    async fn a_status_naming_a_part_of_another_database_confirms_nothing(db: Backing) {
        let store = db.open().await;
        let turn_id = part_left_sending(&store).await;
        let elsewhere = PartRef {
            database: "another".into(),
            turn_id,
            index: 0,
        };
        store
            .record(sent_status(&elsewhere.callback_data()))
            .await
            .unwrap();
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert_eq!(parts[0].outbound_id, None);
    }

    async fn a_part_meta_refused_is_no_longer_sending(db: Backing) {
        let store = db.open().await;
        let turn_id = part_left_sending(&store).await;
        store.clear_part_sending(turn_id, 0).await.unwrap();
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert_eq!(parts[0].sending_since, None);
    }

    async fn an_outbox_messages_parts_go_through_the_same_marks_without_a_turn(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let id = store
            .queue_operator_reply(
                lane("u1"),
                String::new(),
                vec!["an operator's reply".into(), "part two".into()],
            )
            .await
            .unwrap()
            .expect("queued");
        let key = outbox_key(id);
        // Claimed by this process (PostgreSQL: each part is sent under the claim).
        let pending = store.pending_outbox().await.unwrap();
        assert_eq!(pending[0].parts.len(), 2);
        store.mark_part_sending(key, 0).await.unwrap();
        store
            .mark_part_sent(key, 0, "wamid.op.0".into())
            .await
            .unwrap();
        store.mark_part_sending(key, 1).await.unwrap();
        store
            .mark_part_failed(key, 1, "refused".into())
            .await
            .unwrap();
        let parts = store.load_reply(key).await.unwrap().unwrap();
        assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.op.0"));
        assert_eq!((parts[1].outbound_id.as_deref(), parts[1].sending_since), (None, None));
        assert_eq!(
            store.part_outbound_id(key, 0).await.unwrap().as_deref(),
            Some("wamid.op.0")
        );
    }
}
