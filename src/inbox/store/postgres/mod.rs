//! The PostgreSQL backend of [`Store`](super::Store), for several replicas on one database
//! (`--database postgres://...`). All of the product's PostgreSQL SQL lives in this folder.
//!
//! - Connections: a bounded pool (`deadpool-postgres`) with wait, connect and recycle
//!   timeouts, so a PostgreSQL that is down gives fast errors (the webhook's 503, `/readyz`'s
//!   503), never hung requests. Statements are prepared once per connection and planned once,
//!   generically; each connection is opened and warmed before the first webhook (`warm_up.rs`).
//! - Schema: versioned migrations (`migrations/postgres/`), applied at start under an advisory
//!   lock (`migrate.rs`).
//! - Intake (`intake.rs`): one transaction per webhook slice; the unique message id dedupes a
//!   redelivery to any replica; the `200` goes out after the commit.
//! - Ordering across replicas (`lease.rs`, `turns.rs`): a conversation is answered by the
//!   replica that holds its lease row (claimed with `FOR UPDATE SKIP LOCKED`, expiring after
//!   [`LEASE`](lease::LEASE) unless this process's one heartbeat task extends it). Every claim
//!   takes a new fence from a sequence; every write of a turn's outcome, a part's state or
//!   the turn's memory carries this replica's fences and is refused with
//!   [`StoreError::LeaseLost`] once another replica took the conversation over. No lock or
//!   transaction is held across a model call: leases are rows, not locks.
//! - Crash of a replica: its leases expire; another replica's claim takes the conversation
//!   over (a higher fence) and resumes its interrupted turn; a part left `sending` waits for
//!   its status notification (recorded by whichever replica Meta posts it to) for
//!   [`CONFIRM_WINDOW`](super::CONFIRM_WINDOW) from the takeover before it is sent again.
//! - Wake-ups (for the dispatcher's feeder across replicas): [`WakeUps`], a stream of hints
//!   that another process committed work. `Store::wake_ups()` gives one; on SQLite it never
//!   yields. On PostgreSQL it LISTENs on [`WAKE_CHANNEL`] on a connection of its own;
//!   `hint.rs` sends the NOTIFY (`Store::hint_work`) when the dispatcher's cross-replica side
//!   (`inbox::dispatcher::wakeups`, which also polls) asks. The same channel carries the
//!   handoff service's announcements of take-overs and opt-outs (`state_payload`).
//! - The send fence (`send_fence.rs`): a part is marked `sending` only while its conversation
//!   is not with a person nor opted out (a turn's), or while this replica's claim on it holds
//!   (an outbox message's), checked in the mark's statement. A turn's last part is marked
//!   `sent` by the turn's close (`sent_marks.rs`); answered turns' closes are written
//!   together, one statement for those ready at the same moment (`close_batch.rs`).
//!
//! - Beside the message path: who has each conversation (`handoff.rs`), opt-out
//!   (`opt_out.rs`), reactions (`reactions.rs`) and those intake steps (`intake_hooks.rs`),
//!   the outbox with its per-replica claims (`outbox.rs`), what operators read (`views.rs`,
//!   `operator.rs`, also for `wagate inbox --database`), the channel's rate limit shared by the
//!   replicas (`rate_limit.rs`) and the retention purge run by one replica per hour
//!   (`retention.rs`).

mod close_batch;
mod conversations;
mod handoff;
mod hint;
mod intake;
mod intake_hooks;
mod intake_lane;
mod lease;
mod memory;
mod migrate;
pub(crate) mod operator;
mod opt_out;
mod outbox;
mod parts;
mod rate_limit;
mod reactions;
pub mod retention;
mod send_fence;
mod sent_marks;
mod small_steps;
mod tls;
mod turns;
mod url;
mod views;
mod wake;
mod warm_up;

#[cfg(test)]
mod close_batch_tests;
#[cfg(test)]
mod connect_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod turn_path_tests;

pub use url::{DatabaseUrl, DatabaseUrlError};
pub use wake::{state_payload, wake_payload, WakeUp, WakeUps, WAKE_CHANNEL};

use super::{Backlog, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Connections per replica. Turns and webhooks hold one only for a statement or a short
/// transaction, never across a model or Graph call.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection, and for a new one, before the error that
/// becomes a 503.
const POOL_WAIT: Duration = Duration::from_secs(2);
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// Cheap to clone; all clones share the pool, the leases and the heartbeat.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    url: DatabaseUrl,
    /// The URL without the password, as a path for `Store::path`'s callers.
    location: PathBuf,
    database_id: String,
    /// This process: `<host>-<pid>-<random>`, the `owner` of its leases.
    pub(crate) replica: String,
    pub(crate) leases: lease::Leases,
    /// Signalled by the wake-ups' listener when another replica announced a conversation's
    /// change of hands (`hint.rs`), for the handoff service.
    conversation_changes: Arc<tokio::sync::Notify>,
    /// Turns' memory entries waiting for the statement that saves the turn's reply
    /// (`memory.rs`, `append_memory`).
    deferred_memory: std::sync::Mutex<std::collections::HashMap<i64, memory::MemoryRows>>,
    /// Turns' last parts Meta accepted, waiting for the statement that closes the turn
    /// (`sent_marks.rs`).
    sent_marks: std::sync::Mutex<std::collections::HashMap<i64, sent_marks::SentMark>>,
    /// Answered turns' closes waiting to be written together (`close_batch.rs`).
    pub(crate) closes: close_batch::Closes,
    /// How many migrations this open applied (tests: exactly one of two racing opens does).
    #[cfg_attr(not(test), allow(dead_code))]
    migrations_applied: usize,
}

impl PgStore {
    /// Connect, migrate, start the lease heartbeat.
    pub(crate) async fn open(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        let pool = pool(url)?;
        let target = url.target();
        let mut client = pool.get().await.map_err(|e| pool_error(&target, e))?;
        let migrated = migrate::migrate(&mut client).await?;
        drop(client);
        let inner = Arc::new(Inner {
            pool,
            url: url.clone(),
            location: PathBuf::from(url.to_string()),
            database_id: migrated.database_id,
            replica: replica_id(),
            leases: lease::Leases::default(),
            conversation_changes: Arc::new(tokio::sync::Notify::new()),
            deferred_memory: Default::default(),
            sent_marks: Default::default(),
            closes: Default::default(),
            migrations_applied: migrated.applied,
        });
        lease::spawn_heartbeat(Arc::downgrade(&inner));
        warm_up::warm_up(&inner.pool).await;
        tracing::info!(database = %url, replica = %inner.replica, "PostgreSQL store open");
        Ok(PgStore { inner })
    }

    /// For one operator command (`wagate inbox --database`, `retry`, `history`): connect and
    /// check that a schema this binary reads is there, without migrating it (only `serve`
    /// changes the schema) and without a lease heartbeat (a command answers no conversation).
    pub(crate) async fn open_for_operator(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        let pool = pool(url)?;
        let target = url.target();
        let client = pool.get().await.map_err(|e| pool_error(&target, e))?;
        let location = PathBuf::from(url.to_string());
        let database_id = migrate::existing(&client)
            .await?
            .ok_or_else(|| StoreError::Missing {
                path: location.clone(),
            })?;
        drop(client);
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                url: url.clone(),
                location,
                database_id,
                replica: replica_id(),
                leases: lease::Leases::default(),
                conversation_changes: Arc::new(tokio::sync::Notify::new()),
                deferred_memory: Default::default(),
                sent_marks: Default::default(),
                closes: Default::default(),
                migrations_applied: 0,
            }),
        })
    }

    pub(crate) fn database_id(&self) -> &str {
        &self.inner.database_id
    }

    pub(crate) fn location(&self) -> &Path {
        &self.inner.location
    }

    #[cfg(test)]
    pub(crate) fn migrations_applied(&self) -> usize {
        self.inner.migrations_applied
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// A connection from the pool; a PostgreSQL that cannot be reached within the timeouts
    /// is [`StoreError::Unreachable`].
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.client().await
    }

    /// `Ok` when a probe write commits now (within the pool's timeouts). A read-only server
    /// (a standby, `default_transaction_read_only`) fails here too.
    pub(crate) async fn writable(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let now = super::now_millis().to_string();
        let stmt = client
            .prepare_cached(
                "INSERT INTO store_meta (key, value) VALUES ('readiness_probe', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&now])
            .await
            .map_err(|e| match self.error(e) {
                unreachable @ StoreError::Unreachable { .. } => unreachable,
                refused => StoreError::NotWritable(format!("{}: {refused}", self.inner.url)),
            })?;
        Ok(())
    }

    /// Map a driver error: a lost connection is `Unreachable`, anything else the server's
    /// message.
    pub(crate) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        self.inner.error(e)
    }

    pub(crate) async fn backlog(&self) -> Result<Backlog, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*), MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(Backlog {
            open_messages: row.get::<_, i64>(0).max(0) as u64,
            oldest_received_at: row.get(1),
        })
    }

    pub(crate) async fn wake_ups(&self) -> Result<WakeUps, StoreError> {
        wake::listen(
            &self.inner.url,
            Arc::clone(&self.inner.conversation_changes),
        )
        .await
    }
}

impl Inner {
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.url.target(), e))
    }

    pub(crate) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        // Besides a closed socket: the server ending the session (57P01–57P05: shutting down,
        // restarting, the connection terminated by an administrator) or a connection
        // exception (class 08), as a pooled connection reports after a restart.
        let server_gone = e.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            code.starts_with("57P") || code.starts_with("08")
        });
        if server_gone
            || e.is_closed()
            || (e.as_db_error().is_none() && e.to_string().contains("connection"))
        {
            StoreError::Unreachable {
                target: self.url.target(),
                reason: e.to_string(),
            }
        } else {
            db_error(e)
        }
    }
}

/// A statement's failure as the server reported it (message and SQLSTATE).
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => {
            StoreError::Postgres(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
        }
        None => StoreError::Postgres(e.to_string()),
    }
}

/// The bounded pool for `url` (no connection is made yet).
fn pool(url: &DatabaseUrl) -> Result<Pool, StoreError> {
    let tls = tls::Tls::for_url(url).map_err(|reason| StoreError::Unreachable {
        target: url.target(),
        reason,
    })?;
    let manager = Manager::from_config(
        with_generic_plans(url.config.clone()),
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_WAIT))
        .recycle_timeout(Some(CONNECT_WAIT))
        .build()
        .map_err(|e| StoreError::Postgres(e.to_string()))
}

/// The pool's sessions plan each prepared statement once, generically, from its first call
/// (`plan_cache_mode = force_generic_plan`), instead of planning it afresh for each of its
/// first five calls on every connection, as PostgreSQL does by default to compare custom and
/// generic plans. A fresh server runs every statement of the message path (and each statement
/// inside the turn functions) on each of the pool's connections within its first second: that
/// planning made the first second's 500 messages wait hundreds of milliseconds, a backlog the
/// rest of a busy run could not drain (BENCHMARKS.md, "The first second"). Every statement
/// here names its rows by key (a conversation, a turn, a message id), so the generic plan is
/// the plan a custom one would be. An operator's own `options` in the URL still win.
fn with_generic_plans(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let theirs = config.get_options().unwrap_or_default().to_owned();
    config.options(format!("-c plan_cache_mode=force_generic_plan {theirs}").trim_end());
    config
}

fn pool_error(target: &str, e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    let reason = match e {
        PoolError::Timeout(_) => "no connection within the pool's timeouts".to_owned(),
        PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => e.to_string(),
        },
        other => other.to_string(),
    };
    StoreError::Unreachable {
        target: target.to_owned(),
        reason,
    }
}

/// `<host>-<pid>-<random>`: unique per process, readable in `leases.owner`.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
