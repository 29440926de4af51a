//! Webhooks recorded together (`intake_batch.rs`, `wagate_record_lanes`): those that arrive
//! while one is written share the next statement, each gets its own outcome and turn, and
//! one that fails does not take the others with it.
//!
//! Each test holds the first webhook's statement at `inbound`'s table lock (a transaction of
//! its own), queues the others meanwhile, then lets go: the others are then written by the
//! writer's next statement, all together.

use super::testdb::TestDb;
use crate::inbox::store::both_backends::{batch, lane, message};
use crate::inbox::store::{RecordOutcome, Store, StoreError};
use crate::inbox::{LaneKey, Turn};
use std::time::Duration;
use tokio::task::JoinHandle;

type Recorded = JoinHandle<Result<(RecordOutcome, Vec<Turn>), StoreError>>;

async fn open(db: &TestDb) -> Store {
    Store::open_postgres(&db.database_url())
        .await
        .expect("the store opens")
}

/// A webhook with `ids` of `user`'s conversation, recorded (and its turn claimed, with
/// `claim`) on a task of its own.
fn webhook(store: &Store, user: &str, ids: &[&str], claim: bool) -> Recorded {
    let store = store.clone();
    let messages = ids.iter().map(|id| message(id, user)).collect();
    let lanes: Vec<LaneKey> = if claim { vec![lane(user)] } else { Vec::new() };
    tokio::spawn(async move { store.record_and_claim(batch(messages), lanes).await })
}

/// Wait until `ready` holds (the writer is a task of its own).
async fn until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..500 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting until {what}");
}

/// `first` recorded while `inbound` is locked (its statement waits), then `others()` queued
/// behind it, then the lock let go: the results of `others`, in order.
async fn queued_behind_a_held_statement(
    db: &TestDb,
    store: &Store,
    others: impl FnOnce() -> Vec<Recorded>,
) -> Vec<Result<(RecordOutcome, Vec<Turn>), StoreError>> {
    let records = &store.postgres().inner().records;
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE inbound IN SHARE MODE")
        .await
        .unwrap();
    let first = webhook(store, "u-first", &["in.first"], true);
    until("the writer took the first webhook", || {
        records.statements() == 1
    })
    .await;
    let others = others();
    let queued = others.len();
    until("the others are queued", || records.waiting() == queued).await;
    holder.batch_execute("ROLLBACK").await.unwrap();
    let (_, turns) = first.await.unwrap().expect("the first webhook is recorded");
    assert_eq!(turns.len(), 1, "the first webhook's turn is claimed");
    let mut results = Vec::new();
    for recorded in others {
        results.push(recorded.await.unwrap());
    }
    assert_eq!(
        records.statements(),
        2,
        "the webhooks queued behind the first are written by one statement"
    );
    results
}

#[tokio::test]
async fn webhooks_arriving_while_one_is_written_share_the_next_statement_each_with_its_own_outcome()
{
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = open(&db).await;
    let users: Vec<String> = (0..16).map(|n| format!("u{n:02}")).collect();
    let results = queued_behind_a_held_statement(&db, &store, || {
        let mut others: Vec<Recorded> = users
            .iter()
            .map(|u| webhook(&store, u, &[&format!("in.{u}")], true))
            .collect();
        // A redelivery of the first webhook's message, and a second webhook of u05's
        // conversation (its first is queued before it).
        others.push(webhook(&store, "u-first", &["in.first"], false));
        others.push(webhook(&store, "u05", &["in.u05.b", "in.u05.c"], false));
        others
    })
    .await;

    for (user, result) in users.iter().zip(&results) {
        let (outcome, turns) = result.as_ref().expect("recorded");
        assert_eq!(outcome.new_pending_messages, 1, "{user}: one new message");
        assert!(outcome.new_pending.is_empty(), "{user}: its turn has it");
        let ids: Vec<&str> = turns
            .iter()
            .flat_map(|t| t.messages.iter().map(|m| m.message_id.as_str()))
            .collect();
        assert_eq!(
            ids,
            vec![format!("in.{user}")],
            "{user}'s turn holds its own message"
        );
        assert_eq!(turns[0].lane, lane(user));
    }
    let (redelivered, turns) = results[16].as_ref().expect("the redelivery is answered");
    assert_eq!(redelivered.duplicates, 1, "a redelivery is a duplicate");
    assert_eq!(redelivered.new_pending_messages, 0);
    assert!(turns.is_empty());
    let (later, turns) = results[17].as_ref().expect("recorded");
    assert_eq!(later.new_pending_messages, 2);
    assert!(
        turns.is_empty(),
        "u05's turn was claimed by its first webhook"
    );
    assert_eq!(
        later.new_pending,
        vec![lane("u05")],
        "the dispatcher is told u05 has messages its running turn does not hold"
    );
    assert_eq!(
        db.query_text(
            "SELECT count(*) || ' messages, ' || count(DISTINCT turn_id) || ' turns, '
                    || count(*) FILTER (WHERE state = 'pending') || ' pending' FROM inbound"
        )
        .await,
        "19 messages, 17 turns, 2 pending",
        "every message recorded once: 17 taken by their turns, u05's later two waiting"
    );
}

#[tokio::test]
async fn a_webhook_that_fails_among_others_fails_alone_and_the_others_are_recorded() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = open(&db).await;
    db.execute(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.message_id = 'in.poison' THEN RAISE EXCEPTION 'poisoned message'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER poison BEFORE INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION poison();",
    )
    .await;
    let results = queued_behind_a_held_statement(&db, &store, || {
        vec![
            webhook(&store, "a", &["in.a"], true),
            webhook(&store, "p", &["in.poison"], true),
            webhook(&store, "z", &["in.z"], true),
        ]
    })
    .await;

    assert!(
        matches!(&results[1], Err(StoreError::Postgres(e)) if e.contains("poisoned message")),
        "the failing webhook gets its own error (its 503): {:?}",
        results[1].as_ref().map(|(o, _)| o)
    );
    for (n, user) in [(0, "a"), (2, "z")] {
        let (outcome, turns) = results[n].as_ref().expect("the others are recorded");
        assert_eq!(outcome.new_pending_messages, 1);
        assert_eq!(turns.len(), 1, "{user}'s turn is claimed");
    }
    assert_eq!(
        db.query_text("SELECT string_agg(message_id, ',' ORDER BY message_id) FROM inbound")
            .await,
        "in.a,in.first,in.z",
        "recorded: everything but the failing webhook"
    );
}
