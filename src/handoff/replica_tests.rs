//! Several replicas on PostgreSQL: a take-over, a release or an opt-out committed on one
//! replica reaches the others by `NOTIFY`, without waiting for their poll. The follower here
//! polls once an hour, so only the `NOTIFY` can be what stops the turn.

use super::tests::{config, inbound, lane, record};
use super::*;
use crate::inbox::store::{OptChange, OptSource};
use crate::inbox::Batch;

async fn replica(db: &crate::inbox::store::testdb::TestDb) -> Arc<Handoff> {
    let store = Store::open_postgres(&db.database_url()).await.unwrap();
    Handoff::start(
        store,
        config("  release_after_seconds: 60\n"),
        Arc::new(Metrics::new()),
        None,
    )
    .await
    .unwrap()
}

async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

#[tokio::test]
async fn a_take_over_release_and_opt_out_on_one_replica_reach_another_at_once_not_at_its_poll() {
    let Some(db) = crate::inbox::store::testdb::TestDb::fresh().await else {
        return;
    };
    let (a, b) = (replica(&db).await, replica(&db).await);
    // B listens (its dispatcher does, in a server) and follows with a poll too slow to matter.
    let _listening = b.store().wake_ups().await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(replicas::follow_for_test(
        Arc::clone(&b),
        stop.clone(),
        Duration::from_secs(3600),
    ));
    let now = jiff::Timestamp::now().as_second();
    record(a.store(), inbound("m1", now)).await;

    let turn_on_b = b.enter_turn(&lane()).expect("B answers the conversation");
    assert!(a
        .take_over(&lane(), Trigger::Operator, None, Vec::new())
        .await
        .unwrap());
    tokio::time::timeout(Duration::from_secs(10), turn_on_b.stopped())
        .await
        .expect("B's running turn is stopped by A's announcement");
    assert!(b.is_human(&lane()));
    drop(turn_on_b);

    assert!(a
        .release(&lane(), crate::metrics::ReleaseTrigger::Operator)
        .await
        .unwrap());
    assert!(
        eventually(|| !b.is_human(&lane())).await,
        "B hears the release: its next turn for the conversation runs"
    );

    let turn_on_b = b.enter_turn(&lane()).expect("back with the agent");
    let outcome = a
        .store()
        .record(Batch {
            opt_changes: vec![OptChange {
                lane: lane(),
                message_id: None,
                opt_out: true,
                source: OptSource::UserPreferences,
                timestamp: now + 1,
                reply: Vec::new(),
            }],
            ..Batch::default()
        })
        .await
        .unwrap();
    a.after_opt_changes(&outcome);
    tokio::time::timeout(Duration::from_secs(10), turn_on_b.stopped())
        .await
        .expect("B's running turn is stopped by A's opt-out");
    assert!(b.is_opted_out(&lane()));
    stop.cancel();
}
