//! The turn path's cost on PostgreSQL, held by tests: a claim and a close read their own
//! conversation's rows however many others wait, and a turn's memory goes out with its saved
//! reply instead of in a statement of its own (BENCHMARKS.md, "Several replicas on PostgreSQL").

use super::testdb::TestDb;
use crate::inbox::store::both_backends::{batch, lane, message};
use crate::inbox::store::{Store, StoreError, TurnOutcome};
use crate::memory::MemoryEntry;

async fn open(db: &TestDb) -> Store {
    Store::open_postgres(&db.database_url())
        .await
        .expect("the store opens")
}

/// A connection to `db` that keeps generic plans from the first call, as the pool's do.
async fn generic_plans_client(db: &TestDb) -> tokio_postgres::Client {
    let client = db.client().await;
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    client
}

/// Shared buffers `sql` reads and writes (its server-side functions' statements included),
/// run inside `tx`, whose connection keeps generic plans as a pooled one does after a few calls.
pub(super) async fn buffers(tx: &tokio_postgres::Transaction<'_>, sql: &str) -> i64 {
    let lines: Vec<String> = tx
        .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The top node's line `Buffers: shared hit=N read=M ...` comes first.
    let top = lines
        .iter()
        .find(|l| l.trim_start().starts_with("Buffers: shared"))
        .unwrap_or_else(|| panic!("no buffers in {lines:#?}"));
    ["hit=", "read="]
        .iter()
        .filter_map(|key| {
            let at = top.find(key)? + key.len();
            top[at..].split(' ').next()?.parse::<i64>().ok()
        })
        .sum()
}

/// History, then a burst: statistics taken while 3,000 messages (users `u0`..) were all
/// answered (as autovacuum last saw them), then 400 conversations (`u0`..`u399`) with a
/// message waiting each. Plans made from those statistics think hardly anything waits.
pub(super) async fn history_then_burst(db: &TestDb, store: &Store) {
    let history: Vec<_> = (0..3000)
        .map(|n| message(&format!("old{n}"), &format!("u{n}")))
        .collect();
    store.record(batch(history)).await.unwrap();
    db.execute("UPDATE inbound SET state = 'done'; ANALYZE")
        .await;
    let burst: Vec<_> = (0..400)
        .map(|n| message(&format!("m{n}"), &format!("u{n}")))
        .collect();
    store.record(batch(burst)).await.unwrap();
}

#[tokio::test]
async fn claiming_and_closing_a_turn_reads_its_conversation_not_every_waiting_one() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = open(&db).await;
    history_then_burst(&db, &store).await;
    store
        .record(batch(vec![message("mine", "me")]))
        .await
        .unwrap();
    let mut client = generic_plans_client(&db).await;
    let tx = client.transaction().await.unwrap();
    let claim = |user: &str| {
        format!("SELECT * FROM wagate_claim('PNID', '{user}', 'tester', 25000, 50, 1, true)")
    };
    // Another conversation first, so the plans and caches are warm.
    buffers(&tx, &claim("u0")).await;
    let claimed = buffers(&tx, &claim("me")).await;
    assert!(
        claimed < 100,
        "a claim read {claimed} buffers with 400 other conversations waiting"
    );
    let (turn, fence): (i64, i64) = {
        let row = tx
            .query_one(
                "SELECT t.id, l.fence FROM turns t JOIN leases l USING (phone_number_id, customer)
                 WHERE t.customer = 'me'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let closed = buffers(
        &tx,
        &format!(
            "SELECT * FROM wagate_finish({turn}, 'tester', ARRAY[{fence}]::bigint[], 'done',
                                         'done', NULL, false, true, 25000, 50, 1)"
        ),
    )
    .await;
    assert!(
        closed < 100,
        "a close read {closed} buffers with 400 other conversations waiting"
    );
    let state: String = tx
        .query_one("SELECT state FROM inbound WHERE message_id = 'mine'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "done", "the close answered the claimed message");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn whether_a_conversation_has_held_parts_is_read_from_the_held_ones_before_any_statistics() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    open(&db).await;
    // 3,000 replies sent, none held, on a fresh table autovacuum has not analyzed yet: without
    // statistics the planner takes `held_at IS NOT NULL` to match nearly every part.
    db.execute(
        "ALTER TABLE reply_parts SET (autovacuum_enabled = off);
         INSERT INTO turns (phone_number_id, customer, state, started_at)
             SELECT 'PNID', 'u' || n, 'done', 0 FROM generate_series(1, 3000) n;
         INSERT INTO reply_parts (turn_id, idx, text)
             SELECT id, 0, repeat('a sent reply ', 20) FROM turns",
    )
    .await;
    let mut client = generic_plans_client(&db).await;
    let tx = client.transaction().await.unwrap();
    // Another conversation first, so the plan and caches are warm.
    buffers(&tx, "SELECT wagate_has_held('PNID', 'u1')").await;
    let read = buffers(&tx, "SELECT wagate_has_held('PNID', 'u7')").await;
    assert!(
        read < 20,
        "the held check read {read} buffers with 3,000 sent parts and none held"
    );
    tx.batch_execute(
        "UPDATE reply_parts SET held_at = 1
         WHERE turn_id = (SELECT id FROM turns WHERE customer = 'u7')",
    )
    .await
    .unwrap();
    let row = tx
        .query_one(
            "SELECT wagate_has_held('PNID', 'u7'), wagate_has_held('PNID', 'u8')",
            &[],
        )
        .await
        .unwrap();
    let (u7, u8): (bool, bool) = (row.get(0), row.get(1));
    assert!(u7, "u7's part waits for the window");
    assert!(!u8, "nothing of u8's waits");
}

/// Record message `id` of u1, claim its turn on `store`, append `said` to its memory.
async fn turn_that_said(store: &Store, id: &str, said: &str, at: i64) -> i64 {
    store.record(batch(vec![message(id, "u1")])).await.unwrap();
    let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    store
        .append_memory("wa_u1".into(), turn.id, vec![MemoryEntry::user(said, at)])
        .await
        .unwrap();
    turn.id
}

async fn memory_of_u1(store: &Store) -> Vec<String> {
    store
        .memory_window("wa_u1".into(), 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.content)
        .collect()
}

#[tokio::test]
async fn a_turns_memory_is_written_with_its_saved_reply_or_at_its_close_without_one() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (a, b) = (open(&db).await, open(&db).await);
    let turn = turn_that_said(&a, "m1", "hi", 1_700_000_000).await;
    assert!(
        memory_of_u1(&b).await.is_empty(),
        "waiting for the saved reply"
    );
    a.save_reply(turn, vec!["hello".into()]).await.unwrap();
    assert_eq!(memory_of_u1(&b).await, ["hi"], "written with the reply");
    a.finish_turn(turn, TurnOutcome::Done).await.unwrap();

    // A turn that closes without a reply writes its memory at the close; a read by the same
    // process writes it at once.
    let turn = turn_that_said(&a, "m2", "again", 1_700_000_001).await;
    a.finish_turn(turn, TurnOutcome::Done).await.unwrap();
    assert_eq!(memory_of_u1(&b).await, ["hi", "again"]);
    turn_that_said(&a, "m3", "third", 1_700_000_002).await;
    assert_eq!(memory_of_u1(&a).await, ["hi", "again", "third"]);
    assert_eq!(memory_of_u1(&b).await, ["hi", "again", "third"]);
}

/// Meta's id of u1's turn's first part, as `store` reads it.
async fn outbound_id(store: &Store, turn: i64) -> Option<String> {
    store.part_outbound_id(turn, 0).await.unwrap()
}

/// Record message `id` of u1 on `store`, claim its turn, save and mark a one-part reply
/// `sending`, and have Meta accept it as `wamid`.
async fn turn_whose_reply_meta_accepted(store: &Store, id: &str, wamid: &str) -> i64 {
    store.record(batch(vec![message(id, "u1")])).await.unwrap();
    let turn = store.claim_turn(lane("u1")).await.unwrap().unwrap();
    store
        .save_reply(turn.id, vec!["hello".into()])
        .await
        .unwrap();
    store.mark_part_sending(turn.id, 0).await.unwrap();
    store
        .mark_last_part_sent(turn.id, 0, wamid.into())
        .await
        .unwrap();
    turn.id
}

#[tokio::test]
async fn a_turns_last_part_is_recorded_sent_by_its_close_even_after_a_take_over() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let (a, b) = (open(&db).await, open(&db).await);
    let turn = turn_whose_reply_meta_accepted(&a, "m1", "wamid.1").await;
    assert_eq!(outbound_id(&b, turn).await, None, "waiting for the close");
    assert_eq!(
        outbound_id(&a, turn).await.as_deref(),
        Some("wamid.1"),
        "this process knows Meta has it"
    );
    a.finish_turn(turn, TurnOutcome::Done).await.unwrap();
    assert_eq!(outbound_id(&b, turn).await.as_deref(), Some("wamid.1"));

    // Taken over before its close: the close is refused, and still records that Meta has the
    // part, so the new owner does not send it again.
    let turn = turn_whose_reply_meta_accepted(&a, "m2", "wamid.2").await;
    db.expire_leases().await;
    b.claim_turn(lane("u1"))
        .await
        .unwrap()
        .expect("b takes over");
    let closed = a.finish_turn(turn, TurnOutcome::Done).await;
    assert!(
        matches!(closed, Err(StoreError::LeaseLost { .. })),
        "{closed:?}"
    );
    assert_eq!(outbound_id(&b, turn).await.as_deref(), Some("wamid.2"));
    let parts = b.load_reply(turn).await.unwrap().unwrap();
    assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.2"));
}
