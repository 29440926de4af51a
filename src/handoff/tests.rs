//! The handoff service against a real store, with an injected clock: the release timer, the
//! hours in a time zone, the 24-hour window, state across a restart.

use super::*;
use crate::config::Config;
use crate::inbox::store::{Durability, Holder, CLOSED_AT_HANDOFF, HELD_FOR_PERSON};
use crate::inbox::{Batch, InboundState, NewInbound};
use crate::metrics::ReleaseTrigger;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock the test moves by hand (unix ms).
#[derive(Clone)]
struct Hand(Arc<AtomicI64>);

impl Hand {
    fn at(utc: &str) -> Hand {
        let t: jiff::Timestamp = utc.parse().unwrap();
        Hand(Arc::new(AtomicI64::new(t.as_millisecond())))
    }
    fn now_real() -> Hand {
        Hand(Arc::new(AtomicI64::new(
            jiff::Timestamp::now().as_millisecond(),
        )))
    }
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }
    fn clock(&self) -> Clock {
        let ms = Arc::clone(&self.0);
        Arc::new(move || jiff::Timestamp::from_millisecond(ms.load(Ordering::SeqCst)).unwrap())
    }
}

pub(super) fn config(handoff_yaml: &str) -> SharedConfig {
    let yaml = format!("default_agent: a\nhandoff:\n{handoff_yaml}");
    let whatsapp = serde_yaml::from_str(&yaml).expect("channel yaml");
    SharedConfig::new(Config {
        dir: std::path::PathBuf::from("."),
        whatsapp,
        agents: BTreeMap::new(),
        agent_files: BTreeMap::new(),
        warnings: Vec::new(),
    })
}

pub(super) fn lane() -> LaneKey {
    LaneKey {
        phone_number_id: "PN".into(),
        user: "5511999".into(),
    }
}

pub(super) fn inbound(id: &str, timestamp: i64) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(),
        display_phone_number: "1".into(),
        contact_name: None,
        kind: "text".into(),
        timestamp,
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"hi"}}}}"#),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

pub(super) async fn record(store: &Store, message: NewInbound) {
    store
        .record(Batch {
            messages: vec![message],
            ..Batch::default()
        })
        .await
        .unwrap();
}

async fn service(dir: &tempfile::TempDir, yaml: &str, hand: &Hand) -> Arc<Handoff> {
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    Handoff::start(
        store,
        config(yaml),
        Arc::new(Metrics::new()),
        Some(hand.clock()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_conversation_goes_back_to_the_agent_after_release_after_seconds_without_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    let h = service(&dir, "  release_after_seconds: 60\n", &hand).await;
    record(
        h.store(),
        inbound("m1", hand.0.load(Ordering::SeqCst) / 1000),
    )
    .await;
    assert!(h
        .take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap());

    hand.advance(59);
    assert_eq!(h.sweep().await, 0);
    assert!(h.is_human(&lane()));
    hand.advance(2);
    assert_eq!(h.sweep().await, 1);
    assert!(!h.is_human(&lane()));
    assert_eq!(h.store().holder(lane()).await.unwrap(), Holder::Agent);
}

#[tokio::test]
async fn an_operator_reply_restarts_the_release_timer() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    let h = service(&dir, "  release_after_seconds: 60\n", &hand).await;
    record(
        h.store(),
        inbound("m1", hand.0.load(Ordering::SeqCst) / 1000),
    )
    .await;
    h.take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap();
    hand.advance(50);
    h.reply(&lane(), "on it").await.unwrap();
    hand.advance(50);
    assert_eq!(h.sweep().await, 0, "50 s since the reply");
    hand.advance(11);
    assert_eq!(h.sweep().await, 1);
}

#[tokio::test]
async fn the_notice_follows_the_opening_hours_in_the_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    // Monday 2026-07-13, Madrid is UTC+2 in summer.
    let hand = Hand::at("2026-07-13T08:00:00Z");
    let yaml = "  message: open\n  closed_message: closed\n  hours: {timezone: Europe/Madrid, days: {mon: \"09:00-18:00\"}}\n";
    let h = service(&dir, yaml, &hand).await;
    let channel = h.config.current().config.whatsapp.clone();
    assert_eq!(h.notice(&channel), ["open"], "10:00 in Madrid");
    hand.advance(9 * 3600);
    assert_eq!(h.notice(&channel), ["closed"], "19:00 in Madrid");
    // Monday 2026-01-12 07:30 UTC is 08:30 in Madrid (UTC+1 in winter): still closed.
    let winter = Hand::at("2026-01-12T07:30:00Z");
    let h = service(&tempfile::tempdir().unwrap(), yaml, &winter).await;
    assert_eq!(h.notice(&channel), ["closed"]);
    winter.advance(3600);
    assert_eq!(h.notice(&channel), ["open"]);
}

#[tokio::test]
async fn an_operator_reply_needs_a_customer_message_from_the_last_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    // Real time: the window trusts Meta's timestamp only when it is close to the arrival
    // (whatsapp::window), and the store stamps arrivals with the real clock.
    let hand = Hand::now_real();
    let h = service(&dir, "  message: hi\n", &hand).await;
    let sent_at = hand.0.load(Ordering::SeqCst) / 1000;
    record(h.store(), inbound("m1", sent_at)).await;
    hand.advance(23 * 3600);
    assert!(h.reply(&lane(), "still in time").await.is_ok());
    hand.advance(2 * 3600);
    assert!(matches!(
        h.reply(&lane(), "too late").await,
        Err(HandoffError::OutsideWindow)
    ));
    let unknown = LaneKey {
        phone_number_id: "PN".into(),
        user: "nobody".into(),
    };
    assert!(matches!(
        h.reply(&unknown, "hello").await,
        Err(HandoffError::UnknownConversation)
    ));
}

#[tokio::test]
async fn messages_waiting_at_handoff_and_arriving_after_it_are_kept_but_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    let h = service(&dir, "  message: hi\n", &hand).await;
    record(h.store(), inbound("m1", 1)).await;
    h.take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap();
    record(h.store(), inbound("m2", 2)).await;
    assert!(
        h.store().open_lanes().await.unwrap().is_empty(),
        "no work for the agent"
    );
    h.release(&lane(), ReleaseTrigger::Operator).await.unwrap();
    assert!(h.store().claim_turn(lane()).await.unwrap().is_none());
    let messages = h
        .store()
        .conversation_messages(lane())
        .await
        .unwrap()
        .unwrap();
    let states: Vec<&str> = messages.iter().map(|m| m.status.as_str()).collect();
    assert_eq!(states, ["skipped", "skipped"]);
    let notes = notes(dir.path());
    assert_eq!(notes, [CLOSED_AT_HANDOFF, HELD_FOR_PERSON]);
}

fn notes(dir: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join(crate::inbox::store::DATABASE_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT note FROM inbound ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<String>>>()
        .unwrap()
}

#[tokio::test]
async fn a_person_keeps_the_conversation_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    {
        let h = service(&dir, "  message: hi\n", &hand).await;
        record(h.store(), inbound("m1", 1)).await;
        h.take_over(&lane(), Trigger::Keyword, Some("asked".into()), Vec::new())
            .await
            .unwrap();
    }
    let h = service(&dir, "  message: hi\n", &hand).await;
    assert!(h.is_human(&lane()));
    assert!(h.enter_turn(&lane()).is_none(), "no agent turn");
    let info = h.human_info(&lane()).unwrap();
    assert_eq!(info.trigger.as_deref(), Some("keyword"));
    assert_eq!(info.reason.as_deref(), Some("asked"));
}

#[tokio::test]
async fn a_turn_running_at_take_over_is_told_to_stop_but_not_one_that_asked_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    let h = service(&dir, "  message: hi\n", &hand).await;
    record(h.store(), inbound("m1", 1)).await;
    let guard = h.enter_turn(&lane()).expect("agent has it");
    h.take_over(&lane(), Trigger::Tool, None, Vec::new())
        .await
        .unwrap();
    assert!(!guard.token.is_cancelled(), "the agent's own request");
    h.release(&lane(), ReleaseTrigger::Operator).await.unwrap();
    drop(guard);
    let guard = h.enter_turn(&lane()).expect("agent has it again");
    h.take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), guard.stopped())
        .await
        .expect("stopped");
}

#[test]
fn conversation_ids_round_trip_and_reject_garbage() {
    let id = conversation_id(&lane());
    assert_eq!(parse_conversation_id(&id), Some(lane()));
    assert_eq!(parse_conversation_id("zz"), None);
    assert_eq!(parse_conversation_id(&hex::encode("no-newline")), None);
}

#[tokio::test]
async fn a_tapped_reply_button_can_be_the_keyword_but_a_sentence_with_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let hand = Hand::now_real();
    let h = service(
        &dir,
        "  keywords: [\"Talk to a person\"]\n  message: hi\n",
        &hand,
    )
    .await;
    let channel = h.config.current().config.whatsapp.clone();
    let mut tapped = inbound("m1", 1);
    tapped.kind = "interactive".into();
    tapped.raw = r#"{"type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b1","title":" talk to A PERSON "}}}"#.into();
    let mut sentence = inbound("m2", 2);
    sentence.raw = r#"{"type":"text","text":{"body":"can I talk to a person please"}}"#.into();
    let mut batch = Batch {
        messages: vec![tapped, sentence],
        ..Batch::default()
    };
    h.mark_keywords(&mut batch, &channel);
    assert_eq!(batch.handoffs.len(), 1);
    assert_eq!(batch.handoffs[0].message_id, "m1");
    assert_eq!(batch.handoffs[0].notice, ["hi"]);
    assert_eq!(batch.messages[0].state, InboundState::Skipped);
    assert_eq!(batch.messages[1].state, InboundState::Pending);
}

#[tokio::test]
async fn a_take_over_on_one_replica_stops_the_turn_running_on_another_and_a_release_there_is_seen_back(
) {
    let Some(db) = crate::inbox::store::testdb::TestDb::fresh().await else {
        return;
    };
    let hand = Hand::now_real();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = Store::open_postgres(&db.database_url()).await.unwrap();
        replicas.push(
            Handoff::start(
                store,
                config("  release_after_seconds: 60\n"),
                Arc::new(Metrics::new()),
                Some(hand.clock()),
            )
            .await
            .unwrap(),
        );
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    record(
        a.store(),
        inbound("m1", hand.0.load(Ordering::SeqCst) / 1000),
    )
    .await;
    let turn_on_b = b.enter_turn(&lane()).expect("B answers the conversation");

    assert!(a
        .take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap());
    assert!(!b.is_human(&lane()), "B has not looked yet");
    assert_eq!(b.sync_from_store().await.unwrap(), 1);
    assert!(b.is_human(&lane()));
    tokio::time::timeout(Duration::from_secs(1), turn_on_b.stopped())
        .await
        .expect("B's running turn is stopped");
    assert!(b.enter_turn(&lane()).is_none(), "and B starts no other");

    assert!(b.release(&lane(), ReleaseTrigger::Operator).await.unwrap());
    assert!(a.is_human(&lane()), "A has not looked yet");
    a.sync_from_store().await.unwrap();
    assert!(!a.is_human(&lane()));
    assert!(
        !a.release(&lane(), ReleaseTrigger::Timeout).await.unwrap(),
        "released once"
    );
}
