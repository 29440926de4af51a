//! The pool made ready before the first webhook: its connections opened, and on each of them
//! the message path's server-side functions run once in a transaction that is rolled back.
//!
//! A new PostgreSQL backend compiles each PL/pgSQL function and plans each statement in it on
//! its first call, and loads the catalog entries of every table and index those touch: about
//! 6 ms more for the first webhook of a connection than for the next (`pgbench -C`). Done by
//! 16 connections during the first second of a burst, that work was a backlog the rest of a
//! busy run could not drain (BENCHMARKS.md, "The first second"). A replica restarting under
//! load (a deploy, a crash) meets that burst. The rolled-back calls leave nothing but used
//! sequence numbers (turn ids skip one per connection at a start, as ids of rolled-back work
//! always may in PostgreSQL), and name conversations no webhook can (`wagate-warm-up`, one
//! customer per connection: with one shared conversation each warm-up waited at the lease's
//! and the message's unique keys for the one before it to roll back, 16 in a row, about a
//! second before the replica could serve).

use super::POOL_SIZE;
use deadpool_postgres::Pool;

/// A message recorded and claimed, its turn closed alone (looking for the next), another
/// recorded and claimed and its turn closed as answered turns are, together, a claim of the
/// then idle conversation: the webhook's, the closes' and the dispatcher's functions, on the
/// warm-up conversation of connection `n` (its own, so no warm-up waits for another's rows).
fn warm_up_sql(n: usize) -> String {
    let record = |id: &str| {
        format!(
            "SELECT count(*) FROM wagate_record_lane(
        'wagate-warm-up', 'warm-up-{n}', ARRAY['{id}'], ARRAY['warm-up'],
        ARRAY['warm-up'], ARRAY['text'], ARRAY[0]::bigint[], ARRAY['pending'],
        ARRAY[NULL]::text[], ARRAY['{{}}'], 0, 'warm-up', 'warm-up',
        true, 'wagate-warm-up', 1000, 1, 0);"
        )
    };
    let record_first = record(&format!("wagate-warm-up-{n}"));
    let record_second = record(&format!("wagate-warm-up-{n}-2"));
    format!(
        "
    {record_first}
    SELECT count(*) FROM wagate_finish(
        (SELECT max(id) FROM turns
         WHERE phone_number_id = 'wagate-warm-up' AND customer = 'warm-up-{n}'),
        'wagate-warm-up',
        ARRAY(SELECT fence FROM leases
              WHERE phone_number_id = 'wagate-warm-up' AND customer = 'warm-up-{n}'),
        'done', 'done', NULL, false, true, 1000, 1, 0);
    {record_second}
    SELECT count(*) FROM wagate_finish_answered(
        'wagate-warm-up',
        ARRAY(SELECT max(id) FROM turns
              WHERE phone_number_id = 'wagate-warm-up' AND customer = 'warm-up-{n}'),
        ARRAY['wagate-warm-up'], ARRAY['warm-up-{n}'],
        ARRAY(SELECT fence FROM leases
              WHERE phone_number_id = 'wagate-warm-up' AND customer = 'warm-up-{n}'),
        ARRAY[true], 0, ARRAY[0], ARRAY['wagate-warm-up'], ARRAY[0]::bigint[]);
    SELECT count(*) FROM wagate_claim(
        'wagate-warm-up', 'warm-up-{n}', 'wagate-warm-up', 1000, 1, 0, true);"
    )
}

/// Open every connection of the pool and warm each. Best effort: a connection that cannot
/// open now is opened when needed; one whose warm-up fails is simply colder.
pub(super) async fn warm_up(pool: &Pool) {
    let mut opening = tokio::task::JoinSet::new();
    for n in 0..POOL_SIZE {
        let pool = pool.clone();
        opening.spawn(async move {
            let mut client = pool.get().await.ok()?;
            if let Err(e) = warm(&mut client, n).await {
                tracing::debug!(error = %e, "a PostgreSQL connection's warm-up failed");
            }
            Some(client)
        });
    }
    // Held until all are open, so each `get` opens a connection of its own.
    let mut open = Vec::with_capacity(POOL_SIZE);
    while let Some(joined) = opening.join_next().await {
        if let Ok(Some(client)) = joined {
            open.push(client);
        }
    }
    tracing::debug!(connections = open.len(), "PostgreSQL pool warmed up");
}

async fn warm(
    client: &mut deadpool_postgres::Client,
    n: usize,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&warm_up_sql(n)).await?;
    tx.rollback().await
}

#[cfg(test)]
mod tests {
    use super::super::testdb::TestDb;
    use crate::inbox::store::Store;

    #[tokio::test]
    async fn warming_a_connection_runs_the_message_path_and_leaves_nothing_behind() {
        let Some(db) = TestDb::fresh().await else {
            return;
        };
        let store = Store::open_postgres(&db.database_url())
            .await
            .expect("the store opens");
        let mut client = store.postgres().inner().pool.get().await.unwrap();
        super::warm(&mut client, 0)
            .await
            .expect("the warm-up's calls succeed");
        for table in ["inbound", "inbound_raw", "turns", "leases"] {
            assert_eq!(
                db.query_text(&format!("SELECT count(*) FROM {table}"))
                    .await,
                "0",
                "the warm-up left rows in {table}"
            );
        }
    }

    #[tokio::test]
    async fn connections_warming_up_together_do_not_wait_for_each_other() {
        let Some(db) = TestDb::fresh().await else {
            return;
        };
        Store::open_postgres(&db.database_url())
            .await
            .expect("the store opens and migrates");
        let first = db.client().await;
        let second = db.client().await;
        first
            .batch_execute(&format!("BEGIN; {}", super::warm_up_sql(0)))
            .await
            .expect("the first connection's warm-up runs");
        // The first's transaction is still open: a warm-up that touched the same rows would
        // wait for it, and fail here at the timeout.
        second
            .batch_execute(&format!(
                "SET statement_timeout = '5s'; BEGIN; {}",
                super::warm_up_sql(1)
            ))
            .await
            .expect("the second connection's warm-up runs while the first is still open");
        first.batch_execute("ROLLBACK").await.unwrap();
        second.batch_execute("ROLLBACK").await.unwrap();
    }
}
