//! The dispatcher seen from outside: order within a conversation, parallel conversations,
//! bursts as one turn, resume at start.

use crate::support::*;
use std::time::Duration;
use wagate::inbox::store::Durability;
use wagate::inbox::{Batch, InboundState, LaneKey, NewInbound, Store};

#[tokio::test]
async fn messages_of_one_conversation_are_handed_over_in_arrival_order() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    // A slow handler, so later messages pile up while a turn runs.
    let recorder = recorder::Recorder::new(Duration::from_millis(30));
    let server = TestServer::start(config.load(), data.path(), Some(recorder.clone())).await;
    let expected: Vec<String> = (0..30).map(|i| format!("wamid.order.{i:02}")).collect();
    for id in &expected {
        assert_eq!(
            server
                .post_signed(&text_body(&[(id, "15551230001", "x")]))
                .await
                .status(),
            200
        );
    }
    assert!(eventually(10, || recorder.message_ids().len() == expected.len()).await);
    assert_eq!(recorder.message_ids(), expected);
    // Messages that piled up were taken together: fewer turns than messages.
    assert!(recorder.turns().len() < expected.len());
    // No turn mixes conversations.
    for turn in recorder.turns() {
        assert!(turn.messages.iter().all(|m| m.user == turn.lane.user));
    }
}

#[tokio::test]
async fn a_slow_conversation_does_not_hold_up_the_others() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let recorder = recorder::Recorder::new(Duration::from_millis(300));
    let server = TestServer::start(config.load(), data.path(), Some(recorder.clone())).await;
    let started = std::time::Instant::now();
    for user in 0..20 {
        let id = format!("wamid.par.{user}");
        let from = format!("1555000{user:04}");
        server.post_signed(&text_body(&[(&id, &from, "x")])).await;
    }
    assert!(eventually(10, || recorder.message_ids().len() == 20).await);
    // 20 conversations of 300 ms each, run in parallel: far less than 20 × 300 ms.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn debounce_gathers_a_burst_into_one_turn() {
    let config = ConfigDir::dry_run(|c| c.debounce_ms(400));
    let data = tempfile::tempdir().unwrap();
    let recorder = recorder::Recorder::new(Duration::ZERO);
    let server = TestServer::start(config.load(), data.path(), Some(recorder.clone())).await;
    for i in 0..4 {
        server
            .post_signed(&text_body(&[(
                &format!("wamid.burst.{i}"),
                "15551230001",
                "x",
            )]))
            .await;
    }
    assert!(eventually(5, || recorder.message_ids().len() == 4).await);
    assert_eq!(recorder.turns().len(), 1);
}

#[tokio::test]
async fn work_left_in_the_inbox_is_resumed_at_start() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    {
        // What a previous run left behind: two pending messages and one interrupted turn.
        let store = Store::open(data.path(), Durability::Normal).unwrap();
        let msg = |id: &str, user: &str| NewInbound {
            message_id: id.into(),
            lane: LaneKey {
                phone_number_id: PHONE_NUMBER_ID.into(),
                user: user.into(),
            },
            display_phone_number: String::new(),
            contact_name: None,
            kind: "text".into(),
            timestamp: 0,
            raw: r#"{"type":"text","text":{"body":"hi"}}"#.into(),
            json: None,
            state: InboundState::Pending,
            note: None,
        };
        store
            .record(Batch {
                messages: vec![msg("wamid.left.1", "u1")],
                ..Batch::default()
            })
            .await
            .unwrap();
        let lane = LaneKey {
            phone_number_id: PHONE_NUMBER_ID.into(),
            user: "u1".into(),
        };
        store.claim_turn(lane).await.unwrap().unwrap(); // taken, never finished
        store
            .record(Batch {
                messages: vec![msg("wamid.left.2", "u1"), msg("wamid.left.3", "u2")],
                ..Batch::default()
            })
            .await
            .unwrap();
    }
    let recorder = recorder::Recorder::new(Duration::ZERO);
    let _server = TestServer::start(config.load(), data.path(), Some(recorder.clone())).await;
    assert!(eventually(5, || recorder.message_ids().len() == 3).await);
    let turns = recorder.turns();
    let u1: Vec<_> = turns.iter().filter(|t| t.lane.user == "u1").collect();
    assert_eq!(u1[0].messages[0].message_id, "wamid.left.1");
    assert_eq!(
        u1[0].attempt, 1,
        "the interrupted turn resumes as a second attempt"
    );
    assert_eq!(u1[1].messages[0].message_id, "wamid.left.2");
}

#[tokio::test]
async fn a_graceful_stop_lets_the_running_turn_finish() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let recorder = recorder::Recorder::new(Duration::from_millis(500));
    let server = TestServer::start(config.load(), data.path(), Some(recorder.clone())).await;
    server
        .post_signed(&text_body(&[("wamid.stop", "15551230001", "x")]))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    assert_eq!(recorder.message_ids(), ["wamid.stop"]);
    let store = Store::open(data.path(), Durability::Normal).unwrap();
    assert!(
        store.open_lanes().await.unwrap().is_empty(),
        "nothing left to resume"
    );
}
