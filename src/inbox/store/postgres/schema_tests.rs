//! wagate's schema on PostgreSQL: replicas starting together migrate it once, and every table
//! carries the settings its migrations give it.

use super::migrate;
use super::testdb::TestDb;
use crate::inbox::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_starting_together_on_a_fresh_database_migrate_it_once() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let url = db.database_url();
    let (a, b) = tokio::join!(Store::open_postgres(&url), Store::open_postgres(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let applied = a.postgres().migrations_applied() + b.postgres().migrations_applied();
    assert_eq!(
        applied,
        migrate::count(),
        "each migration applied exactly once"
    );
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM schema_migrations")
            .await,
        migrate::count().to_string()
    );
    assert_eq!(
        a.part_ref(1, 0).callback_data(),
        b.part_ref(1, 0).callback_data(),
        "both replicas share the database's id"
    );
    // A later start finds nothing to do.
    assert_eq!(db.open_store().await.postgres().migrations_applied(), 0);
}

#[tokio::test]
async fn autovacuum_works_on_every_table_in_small_steps() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    db.open_store().await;
    // Every table of the schema and its TOAST table (migration 7): one left out would be
    // vacuumed in a burst that takes a core from the message path while it lasts.
    let unthrottled = db
        .query_text(
            "SELECT COALESCE(string_agg(r.relname, ', ' ORDER BY r.relname), 'none')
             FROM pg_class c
             LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
             CROSS JOIN LATERAL (
                 SELECT c.relname, c.reloptions
                 UNION ALL
                 SELECT c.relname || ' (TOAST)', t.reloptions WHERE t.oid IS NOT NULL
             ) r
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
               AND NOT COALESCE('autovacuum_vacuum_cost_delay=20' = ANY (r.reloptions), false)",
        )
        .await;
    assert_eq!(
        unthrottled, "none",
        "tables autovacuum would vacuum in one burst"
    );
    assert!(
        db.query_text("SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'")
            .await
            .parse::<u32>()
            .unwrap()
            >= 15,
        "the check looked at wagate's tables"
    );
}
