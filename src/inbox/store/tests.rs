//! Store behaviour against a real database: SQLite, and PostgreSQL where the behaviour is
//! shared (`on_both_backends!`).

use super::both_backends::{batch, lane, message};
use super::*;

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), Durability::Normal).expect("store opens")
}

on_both_backends! {
    async fn a_redelivered_message_is_recorded_once(db: Backing) {
        let store = db.open().await;
        let first = store
            .record(batch(vec![message("m1", "u1")]))
            .await
            .unwrap();
        assert_eq!(first.new_pending, vec![lane("u1")]);
        assert_eq!(first.new_pending_messages, 1);
        let again = store
            .record(batch(vec![message("m1", "u1"), message("m1", "u1")]))
            .await
            .unwrap();
        assert_eq!(again.duplicates, 2);
        assert!(again.new_pending.is_empty());
    }

    async fn concurrent_deliveries_of_one_message_record_it_once(db: Backing) {
        let store = db.open().await;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .record(batch(vec![message("same", "u1")]))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut new = 0;
        for t in tasks {
            new += t.await.unwrap().new_pending_messages;
        }
        assert_eq!(new, 1);
    }

    async fn a_turn_takes_every_pending_message_of_its_lane_in_arrival_order(db: Backing) {
        let store = db.open().await;
        store
            .record(batch(vec![
                message("a", "u1"),
                message("x", "u2"),
                message("b", "u1"),
            ]))
            .await
            .unwrap();
        store.record(batch(vec![message("c", "u1")])).await.unwrap();
        let turn = store.claim_turn(lane("u1")).await.unwrap().expect("a turn");
        let ids: Vec<_> = turn
            .messages
            .iter()
            .map(|m| m.message_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(turn.messages[0].raw["text"]["body"], "hi a");
        assert_eq!(turn.messages[0].contact_name.as_deref(), Some("Ana"));
        store.finish_turn(turn.id, TurnOutcome::Done).await.unwrap();
        assert!(store.claim_turn(lane("u1")).await.unwrap().is_none());
        assert_eq!(store.open_lanes().await.unwrap(), vec![lane("u2")]);
    }

    async fn an_interrupted_turn_is_resumed_with_the_same_id_and_messages_after_a_restart(db: Backing) {
        let turn_id = {
            let store = db.open().await;
            store
                .record(batch(vec![message("a", "u1"), message("b", "u1")]))
                .await
                .unwrap();
            let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
            store
                .save_reply(turn.id, vec!["part one".into(), "part two".into()])
                .await
                .unwrap();
            store
                .mark_part_sent(turn.id, 0, "wamid.out1".into())
                .await
                .unwrap();
            // A message arriving during the interrupted turn belongs to the next turn.
            store.record(batch(vec![message("c", "u1")])).await.unwrap();
            turn.id
        }; // "crash": the store is dropped without finishing the turn
        db.after_crash().await;

        let store = db.open().await;
        assert_eq!(store.open_lanes().await.unwrap(), vec![lane("u1")]);
        let resumed = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        assert_eq!(resumed.id, turn_id);
        assert_eq!(resumed.attempt, 1);
        let ids: Vec<_> = resumed
            .messages
            .iter()
            .map(|m| m.message_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let reply = store.load_reply(turn_id).await.unwrap().unwrap();
        assert_eq!(reply[0].outbound_id.as_deref(), Some("wamid.out1"));
        assert_eq!(reply[1].outbound_id, None);
        store.finish_turn(turn_id, TurnOutcome::Done).await.unwrap();

        let next = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        assert_ne!(next.id, turn_id);
        assert_eq!(next.messages.len(), 1);
        assert_eq!(next.messages[0].message_id, "c");
    }

    async fn statuses_only_move_forward_and_failed_is_final(db: Backing) {
        let store = db.open().await;
        let status = |s: &str, rank| StatusUpdate {
            message_id: "wamid.out".into(),
            recipient: Some("u1".into()),
            status: s.into(),
            rank,
            errors: None,
            pricing: None,
            callback_data: None,
        };
        for (s, rank) in [("read", 3), ("sent", 1), ("delivered", 2)] {
            store
                .record(Batch {
                    statuses: vec![status(s, rank)],
                    ..Batch::default()
                })
                .await
                .unwrap();
        }
        assert_eq!(read_status(&db, &store).await, "read");
        store
            .record(Batch {
                statuses: vec![status("failed", 5)],
                ..Batch::default()
            })
            .await
            .unwrap();
        store
            .record(Batch {
                statuses: vec![status("played", 4)],
                ..Batch::default()
            })
            .await
            .unwrap();
        assert_eq!(read_status(&db, &store).await, "failed");
    }

    async fn skipped_messages_are_kept_but_never_become_turns(db: Backing) {
        let store = db.open().await;
        let mut reaction = message("r1", "u1");
        reaction.state = InboundState::Skipped;
        let outcome = store.record(batch(vec![reaction.clone()])).await.unwrap();
        assert_eq!(outcome.new_skipped, 1);
        assert!(store.claim_turn(lane("u1")).await.unwrap().is_none());
        // and it is still deduplicated
        assert_eq!(
            store
                .record(batch(vec![reaction]))
                .await
                .unwrap()
                .duplicates,
            1
        );
    }

    async fn the_backlog_counts_unanswered_messages(db: Backing) {
        let store = db.open().await;
        store
            .record(batch(vec![message("a", "u1"), message("b", "u2")]))
            .await
            .unwrap();
        let backlog = store.backlog().await.unwrap();
        assert_eq!(backlog.open_messages, 2);
        assert!(backlog.oldest_received_at.is_some());
    }

    async fn closing_a_turn_can_claim_the_next_in_the_same_commit(db: Backing) {
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let first = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        store.record(batch(vec![message("b", "u1")])).await.unwrap();

        let next = store
            .finish_and_claim(first.id, TurnOutcome::Done, lane("u1"))
            .await
            .unwrap()
            .expect("b is pending");
        assert_eq!(next.messages[0].message_id, "b");
        assert_ne!(next.id, first.id);

        let retry = TurnOutcome::RetryLater {
            after: std::time::Duration::from_secs(1),
            reason: "graph down".into(),
        };
        store.record(batch(vec![message("c", "u1")])).await.unwrap();
        let none = store
            .finish_and_claim(next.id, retry, lane("u1"))
            .await
            .unwrap();
        assert!(none.is_none(), "a turn to retry stays the lane's turn");
        let resumed = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        assert_eq!(resumed.id, next.id);
    }

    async fn a_turns_memory_is_kept_once_read_oldest_first_and_purged_when_expired(db: Backing) {
        use crate::memory::MemoryEntry;
        let store = db.open().await;
        store.record(batch(vec![message("a", "u1")])).await.unwrap();
        let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
        let entries = vec![
            MemoryEntry::user("question", 100),
            MemoryEntry::assistant("answer", 200),
        ];
        for _ in 0..2 {
            // Appending a resumed turn again stores nothing new.
            store
                .append_memory("wa_u1".into(), turn.id, entries.clone())
                .await
                .unwrap();
        }
        let window = |limit, since| store.memory_window("wa_u1".into(), limit, since);
        assert_eq!(window(10, 0).await.unwrap(), entries);
        assert_eq!(window(1, 0).await.unwrap(), entries[1..]);
        assert_eq!(window(10, 150).await.unwrap(), entries[1..]);
        assert_eq!(store.purge_memory(150).await.unwrap(), 1);
        assert_eq!(window(10, 0).await.unwrap(), entries[1..]);
    }

    async fn a_flood_from_one_conversation_is_answered_in_turns_of_at_most_the_cap(db: Backing) {
        let store = db.open().await;
        let flood: Vec<NewInbound> = (0..MAX_MESSAGES_PER_TURN * 2 + 7)
            .map(|i| message(&format!("m{i:04}"), "u1"))
            .collect();
        store.record(batch(flood)).await.unwrap();
        let mut sizes = Vec::new();
        let mut next = store.claim_turn(lane("u1")).await.unwrap();
        let mut answered = Vec::new();
        while let Some(turn) = next {
            sizes.push(turn.messages.len());
            answered.extend(turn.messages.iter().map(|m| m.message_id.clone()));
            next = store
                .finish_and_claim(turn.id, TurnOutcome::Done, lane("u1"))
                .await
                .unwrap();
        }
        assert_eq!(
            sizes,
            [MAX_MESSAGES_PER_TURN, MAX_MESSAGES_PER_TURN, 7],
            "the rest form the next turns"
        );
        let mut in_order = answered.clone();
        in_order.sort();
        assert_eq!(answered, in_order, "oldest messages first");
    }

}

async fn read_status(db: &both_backends::Backing, store: &Store) -> String {
    db.query_text(
        store,
        "SELECT status FROM outbound_status WHERE message_id = 'wamid.out'",
    )
    .await
}

#[tokio::test]
async fn a_failing_operation_rolls_back_alone_and_the_rest_of_its_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let records: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record(batch(vec![message(&format!("m{i}"), "u1")]))
                    .await
            })
        })
        .collect();
    // Writes a dead letter, then fails: the dead letter must not survive.
    let failing = store.call(|c| {
        c.execute(
            "INSERT INTO dead_letters (received_at, reason, body) VALUES (0, 'half', '')",
            [],
        )?;
        c.execute("INSERT INTO no_such_table VALUES (1)", [])
    });

    assert!(failing.await.is_err());
    for r in records {
        assert_eq!(r.await.unwrap().unwrap().new_pending_messages, 1);
    }
    let (dead, messages): (i64, i64) = store
        .call(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM dead_letters), (SELECT COUNT(*) FROM inbound)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
        .unwrap();
    assert_eq!((dead, messages), (0, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turns_memory_is_kept_while_a_huge_webhook_is_being_recorded() {
    use crate::memory::{Memory, MemoryEntry};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let memory = Memory::new(store.clone());
    // One body of 40,000 messages, as Meta may send after an outage.
    let huge: Vec<NewInbound> = (0..40_000)
        .map(|i| message(&format!("huge{i:05}"), &format!("u{}", i % 1000)))
        .collect();
    let recording = tokio::spawn({
        let store = store.clone();
        async move {
            let outcome = store.record(batch(huge)).await.unwrap();
            (outcome, std::time::Instant::now())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let entries = [
        MemoryEntry::user("question", 1_700_000_000),
        MemoryEntry::assistant("answer", 1_700_000_001),
    ];
    memory
        .append("wa_u1", 1, &entries)
        .await
        .expect("memory is written");
    let remembered = std::time::Instant::now();
    let (outcome, recorded) = recording.await.unwrap();

    assert_eq!(
        outcome.new_pending_messages, 40_000,
        "the whole body is recorded"
    );
    assert!(
        remembered < recorded,
        "the turn's memory was written between the body's slices, not after all of it"
    );
    assert_eq!(memory.history("wa_u1", 10).await.unwrap(), entries);
}
