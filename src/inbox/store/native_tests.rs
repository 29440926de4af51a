//! Reply parts of any message, held for the 24-hour window, and outbox messages as reply
//! parts, against a real SQLite file.

use super::*;
use crate::whatsapp::graph::{Choice, OutgoingMessage};

fn lane() -> LaneKey {
    LaneKey {
        phone_number_id: "PNID".into(),
        user: "u1".into(),
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), Durability::Normal).expect("store opens")
}

async fn a_turn(store: &Store) -> i64 {
    let message = NewInbound {
        message_id: "m1".into(),
        lane: lane(),
        display_phone_number: "1".into(),
        contact_name: None,
        kind: "text".into(),
        timestamp: 1_700_000_000,
        raw: r#"{"id":"m1","type":"text","text":{"body":"hi"}}"#.into(),
        json: None,
        state: InboundState::Pending,
        note: None,
    };
    store
        .record(Batch {
            messages: vec![message],
            ..Batch::default()
        })
        .await
        .unwrap();
    store.claim_turn(lane()).await.unwrap().unwrap().id
}

fn template() -> OutgoingMessage {
    OutgoingMessage::Template {
        name: "hello_again".into(),
        language: "en_US".into(),
        components: Vec::new(),
    }
}

#[tokio::test]
async fn a_reply_of_buttons_and_text_reads_back_as_saved_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let buttons = OutgoingMessage::Buttons {
        body: "Size?".into(),
        buttons: vec![Choice {
            id: "s".into(),
            title: "Small".into(),
            description: None,
        }],
    };
    let turn_id = {
        let store = open(&dir);
        let turn_id = a_turn(&store).await;
        store
            .save_reply_messages(turn_id, vec![buttons.clone(), OutgoingMessage::text("ok")])
            .await
            .unwrap();
        turn_id
    };
    let store = open(&dir);
    let parts = store.load_reply(turn_id).await.unwrap().unwrap();
    assert_eq!(parts[0].message, buttons);
    assert_eq!(parts[0].text, "Size?\n[buttons: Small]");
    assert_eq!(parts[1].message, OutgoingMessage::text("ok"));
}

#[tokio::test]
async fn held_parts_are_listed_for_their_conversation_and_one_template_reopens_each_silence() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let turn_id = a_turn(&store).await;
    store
        .save_reply(turn_id, vec!["one".into(), "two".into()])
        .await
        .unwrap();
    store
        .mark_part_sent(turn_id, 0, "wamid.1".into())
        .await
        .unwrap();
    let first = store
        .hold_for_window(lane(), turn_id, 1, Some(template()), 42_000)
        .await
        .unwrap();
    assert!(first.is_some(), "the template is queued");
    let again = store
        .hold_for_window(lane(), turn_id, 1, Some(template()), 42_000)
        .await
        .unwrap();
    assert_eq!(again, None, "one template per silence");
    assert_eq!(store.held_turns(lane()).await.unwrap(), vec![turn_id]);
    // A restart finds them too.
    let reopened = open(&dir);
    assert_eq!(reopened.held_turns(lane()).await.unwrap(), vec![turn_id]);
    drop(reopened);
    let parts = store.load_reply(turn_id).await.unwrap().unwrap();
    assert!(
        parts[0].held_since.is_none(),
        "an accepted part is never held"
    );
    assert!(parts[1].held_since.is_some());
    let outbox = store.pending_outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].parts[0].message, template());

    store
        .mark_part_sent(turn_id, 1, "wamid.2".into())
        .await
        .unwrap();
    assert!(store.held_turns(lane()).await.unwrap().is_empty());
    // A later silence (the customer wrote at 99 000) gets its own template.
    let later = store
        .hold_for_window(lane(), turn_id, 2, Some(template()), 99_000)
        .await
        .unwrap();
    assert!(later.is_some());
}

#[tokio::test]
async fn an_outbox_of_the_earlier_layout_moves_into_reply_parts_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        a_turn(&store).await;
    }
    let db = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE outbox_parts (outbox_id INTEGER NOT NULL, idx INTEGER NOT NULL,
                 text TEXT NOT NULL, outbound_id TEXT, sent_at INTEGER, error TEXT,
                 PRIMARY KEY (outbox_id, idx));
             INSERT INTO outbox (id, phone_number_id, user, author, text, created_at, state)
                 VALUES (7, 'PNID', 'u1', 'operator', 'hello', 1, 'pending');
             INSERT INTO outbox_parts (outbox_id, idx, text, outbound_id)
                 VALUES (7, 0, 'hello', 'wamid.sent'), (7, 1, 'again', NULL);",
        )
        .unwrap();
    }
    let store = open(&dir);
    let outbox = store.pending_outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    let parts = &outbox[0].parts;
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.sent"));
    assert_eq!(parts[1].message, OutgoingMessage::text("again"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'outbox_parts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}
