//! The inbox's per-message queries must stay O(backlog), not O(history): each one reaches
//! `inbound` through an index (SQLite's own query plans say so), and an inbox created with an
//! earlier layout is brought up to date.

use super::turns::{
    FINISH_MESSAGES, INTERRUPTED_TURN, OPEN_LANES, OPEN_LANES_AFTER, PENDING_BY_LANE, TAKEN_BY_TURN,
};
use super::*;

/// The plan SQLite picks for `sql`, one line per step.
async fn plan(store: &Store, sql: &'static str) -> Vec<String> {
    store
        .call(move |c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let rows =
                stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?;
            rows.collect()
        })
        .await
        .expect("plan")
}

/// Steps that read a whole table or a whole index other than `partial_index` (which holds
/// only the backlog, so scanning it is fine).
fn full_scans<'a>(plan: &'a [String], partial_index: &str) -> Vec<&'a String> {
    plan.iter()
        .filter(|step| step.starts_with("SCAN") && !step.contains(partial_index))
        .collect()
}

async fn assert_uses(store: &Store, sql: &'static str, index: &str) {
    let plan = plan(store, sql).await;
    assert!(
        plan.iter().any(|step| step.contains(index)),
        "expected {index} in the plan of {sql}: {plan:?}"
    );
    assert!(
        full_scans(&plan, index).is_empty(),
        "full scan in {sql}: {plan:?}"
    );
}

#[tokio::test]
async fn claiming_finishing_and_listing_open_lanes_use_indexes_not_a_scan_of_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Durability::Normal).unwrap();

    assert_uses(&store, PENDING_BY_LANE, "inbound_pending_by_lane").await;
    assert_uses(&store, TAKEN_BY_TURN, "inbound_by_turn_id").await;
    assert_uses(&store, FINISH_MESSAGES, "inbound_by_turn_id").await;
    assert_uses(&store, INTERRUPTED_TURN, "turns_running").await;
    assert_uses(&store, OPEN_LANES, "inbound_open_by_lane").await;
    assert_uses(&store, OPEN_LANES_AFTER, "inbound_open_by_lane").await;
    let page = plan(&store, OPEN_LANES_AFTER).await;
    assert!(
        page.iter().any(|step| step.starts_with("SEARCH")),
        "a page starts at its cursor, not at the beginning of the backlog: {page:?}"
    );
}

#[tokio::test]
async fn an_inbox_with_the_json_inside_inbound_is_moved_to_the_new_layout_and_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        old.execute_batch(
            "CREATE TABLE inbound (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
                 phone_number_id TEXT NOT NULL, display_phone_number TEXT NOT NULL DEFAULT '',
                 user TEXT NOT NULL, contact_name TEXT, kind TEXT NOT NULL,
                 timestamp INTEGER NOT NULL, raw TEXT NOT NULL, received_at INTEGER NOT NULL,
                 state TEXT NOT NULL, turn_id INTEGER, note TEXT);
             CREATE INDEX inbound_by_turn ON inbound (turn_id);
             INSERT INTO inbound (message_id, phone_number_id, user, kind, timestamp, raw,
                                  received_at, state)
             VALUES ('old1', 'PNID', 'u1', 'text', 1, '{\"text\":{\"body\":\"from before\"}}',
                     1, 'pending');",
        )
        .unwrap();
    }

    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    let lane = LaneKey {
        phone_number_id: "PNID".into(),
        user: "u1".into(),
    };
    assert_eq!(store.open_lanes().await.unwrap(), vec![lane.clone()]);
    let turn = store
        .claim_turn(lane)
        .await
        .unwrap()
        .expect("the old message");
    assert_eq!(turn.messages[0].message_id, "old1");
    assert_eq!(turn.messages[0].raw["text"]["body"], "from before");
    drop(store);

    // Opening again (the layout is already new) changes nothing.
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    assert_eq!(store.backlog().await.unwrap().open_messages, 1);
}
