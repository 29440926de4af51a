//! Versioned migrations (`migrations/postgres/NNNN_name.sql`, embedded in the binary), applied
//! at start in one transaction under a transaction-level advisory lock: replicas starting
//! together queue on the lock, the first applies what is missing, the others find it done.
//! A failed migration rolls back whole (PostgreSQL's DDL is transactional) and the replica
//! does not start.

use super::db_error;
use crate::inbox::store::StoreError;

/// (version, name, SQL), in order. Never edit a released one: add the next file.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "rate_limit_retention",
        include_str!("../../../../migrations/postgres/0002_rate_limit_retention.sql"),
    ),
    (
        3,
        "turn_functions",
        include_str!("../../../../migrations/postgres/0003_turn_functions.sql"),
    ),
    (
        4,
        "lane_scoped_statements",
        include_str!("../../../../migrations/postgres/0004_lane_scoped_statements.sql"),
    ),
    (
        5,
        "plan_proof_held_check",
        include_str!("../../../../migrations/postgres/0005_plan_proof_held_check.sql"),
    ),
    (
        6,
        "close_turns_together",
        include_str!("../../../../migrations/postgres/0006_close_turns_together.sql"),
    ),
    (
        7,
        "maintenance_in_small_steps",
        include_str!("../../../../migrations/postgres/0007_maintenance_in_small_steps.sql"),
    ),
    (
        8,
        "one_copy_of_a_message_in_its_turn",
        include_str!("../../../../migrations/postgres/0008_one_copy_of_a_message_in_its_turn.sql"),
    ),
];

/// `pg_advisory_xact_lock` key of the migrations (any constant no other lock of ours uses).
const MIGRATION_LOCK: i64 = 0x7761_6761_7465_0001; // "wagate" 1

/// What [`migrate`] found and did.
pub(crate) struct Migrated {
    /// How many migrations this call applied (0 when another replica or an earlier start did).
    pub(crate) applied: usize,
    /// The database's id (see `PartRef`), created with the schema.
    pub(crate) database_id: String,
}

/// Bring the schema up to date and read (or make, once) the database's id.
pub(crate) async fn migrate(
    client: &mut deadpool_postgres::Object,
) -> Result<Migrated, StoreError> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db_error)?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newer) = done.iter().copied().filter(|v| *v > latest()).max() {
        return Err(StoreError::Migration {
            version: newer,
            reason: "the database was upgraded by a newer wagate; run that version (or newer)"
                .into(),
        });
    }
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Migration {
                version: *version,
                reason: db_error(e).to_string(),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db_error)?;
        tracing::info!(version, name, "PostgreSQL schema migration applied");
        applied += 1;
    }
    let fresh = format!("{:016x}", rand::random::<u64>());
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING",
        &[&fresh],
    )
    .await
    .map_err(db_error)?;
    let database_id: String = tx
        .query_one(
            "SELECT value FROM store_meta WHERE key = 'database_id'",
            &[],
        )
        .await
        .map_err(db_error)?
        .get(0);
    tx.commit().await.map_err(db_error)?;
    Ok(Migrated {
        applied,
        database_id,
    })
}

/// The database's id when a wagate schema this binary reads is there (`None`: no schema
/// yet); an error when a newer wagate upgraded it. Changes nothing.
pub(crate) async fn existing(
    client: &deadpool_postgres::Object,
) -> Result<Option<String>, StoreError> {
    let present: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(db_error)?
        .get(0);
    if !present {
        return Ok(None);
    }
    let newest: Option<i32> = client
        .query_one("SELECT MAX(version) FROM schema_migrations", &[])
        .await
        .map_err(db_error)?
        .get(0);
    if let Some(newer) = newest.filter(|v| *v > latest()) {
        return Err(StoreError::Migration {
            version: newer,
            reason: "the database was upgraded by a newer wagate; run that version (or newer)"
                .into(),
        });
    }
    let id = client
        .query_opt(
            "SELECT value FROM store_meta WHERE key = 'database_id'",
            &[],
        )
        .await
        .map_err(db_error)?;
    Ok(id.map(|r| r.get(0)))
}

/// The newest version this binary knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _, _)| *v)
}

/// How many migrations this binary carries (tests).
#[cfg(test)]
pub(crate) fn count() -> usize {
    MIGRATIONS.len()
}
