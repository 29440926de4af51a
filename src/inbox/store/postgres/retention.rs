//! Retention on PostgreSQL: what the inbox keeps, and the purge that one replica at a time
//! runs, once per time slot across the deployment.
//!
//! The promises SQLite keeps by never deleting inbox rows hold here too, within 8 days:
//! - a redelivered message is recognised (Meta redelivers for up to 7 days): no message
//!   younger than [`INBOX_RETENTION`] is deleted;
//! - nothing unfinished goes: pending and taken messages, running and failed turns (an
//!   operator's `wagate retry`), unsent outbox messages, and the messages of a conversation a
//!   person has now (they go into the memory when it is released) are kept whatever their age;
//! - the conversation list and the 24-hour window still know every conversation: the newest
//!   message of each conversation is kept;
//! - dead letters stay until an operator retries them (they are few, and they are evidence);
//! - conversation memory has its own `ttl` (`spec.memory.conversational.ttl`), untouched here.
//!
//! What goes after 8 days: answered and skipped messages with their JSON, finished turns with
//! their reply parts, sent or failed outbox messages with theirs, and old delivery statuses.
//!
//! Every replica wakes up every [`CHECK_EVERY`]; a run belongs to an hour ([`SLOT`]): the
//! replica that gets the advisory lock ([`LOCK_KEY`], `pg_try_advisory_lock`, so never two at
//! once) and then inserts the slot's `maintenance_runs` row (`ON CONFLICT DO NOTHING`, so
//! once per slot) purges, in batches of [`BATCH`] rows, each its own short transaction, so
//! intake never waits long behind it, with a rest after each (`small_steps.rs`) so the purge
//! never takes more than a fifth of a PostgreSQL core from the message path.

use super::super::now_millis;
use super::super::{Backend, Store, StoreError};
use super::small_steps::delete_in_small_steps;
use super::PgStore;
use deadpool_postgres::GenericClient;
use std::time::Duration;
use tokio_postgres::Error;

/// How long answered inbox rows are kept: Meta redelivers for up to 7 days; a day more.
pub const INBOX_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);
/// One purge per slot across the deployment.
pub const SLOT: Duration = Duration::from_secs(3600);
/// How often each replica looks whether the current slot's purge is done.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);
/// Rows per delete statement.
const BATCH: i64 = 1_000;
/// The advisory lock of the purge (the migrations take their own key).
const LOCK_KEY: i64 = 0x7761_6761_7465_5250; // "wagateRP"
/// The task's name in `maintenance_runs`.
const TASK: &str = "inbox_retention";

/// What one replica's purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRun {
    pub messages: u64,
    pub turns: u64,
    pub outbox: u64,
    pub statuses: u64,
}

impl RetentionRun {
    fn total(&self) -> u64 {
        self.messages + self.turns + self.outbox + self.statuses
    }
}

/// Why a replica did not purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionSkipped {
    /// Another replica is purging now.
    Busy,
    /// This slot's purge already ran.
    AlreadyRan,
}

impl PgStore {
    /// The purge of the slot containing `now_ms` (unix ms), if no other replica runs or ran
    /// it. Deletes what is older than `now_ms - INBOX_RETENTION` (see the module doc).
    pub(crate) async fn run_retention(
        &self,
        now_ms: i64,
    ) -> Result<Result<RetentionRun, RetentionSkipped>, StoreError> {
        let c = self.client().await?;
        let locked: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| self.error(e))?
            .get(0);
        if !locked {
            return Ok(Err(RetentionSkipped::Busy));
        }
        let result = purge_locked(&c, now_ms, &self.inner.replica)
            .await
            .map_err(|e| self.error(e));
        // A session lock outlives the statement: give it back before the connection goes
        // back to the pool; a connection that cannot is closed, which frees the lock.
        let unlocked = c
            .query_one("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
        if unlocked.is_err() {
            drop(deadpool_postgres::Object::take(c));
        }
        result
    }
}

/// The purge, under the advisory lock: claim the slot, delete batch after batch, note the run.
async fn purge_locked<C: GenericClient>(
    c: &C,
    now_ms: i64,
    replica: &str,
) -> Result<Result<RetentionRun, RetentionSkipped>, Error> {
    let slot = now_ms / i64::try_from(SLOT.as_millis()).unwrap_or(i64::MAX);
    let claimed = c
        .execute(
            "INSERT INTO maintenance_runs (task, slot, replica, started_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&TASK, &slot, &replica, &now_millis()],
        )
        .await?;
    if claimed == 0 {
        return Ok(Err(RetentionSkipped::AlreadyRan));
    }
    let before = now_ms - i64::try_from(INBOX_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let run = RetentionRun {
        messages: until_done(c, PURGE_MESSAGES, before).await?,
        turns: until_done(c, PURGE_TURNS, before).await?,
        outbox: until_done(c, PURGE_OUTBOX, before).await?,
        statuses: until_done(c, PURGE_STATUSES, before).await?,
    };
    let total = i64::try_from(run.total()).unwrap_or(i64::MAX);
    c.execute(
        "UPDATE maintenance_runs SET finished_at = $3, deleted = $4
         WHERE task = $1 AND slot = $2",
        &[&TASK, &slot, &now_millis(), &total],
    )
    .await?;
    // The runs' own rows: a month of them is plenty to see that purges happen.
    c.execute(
        "DELETE FROM maintenance_runs WHERE task = $1 AND slot < $2",
        &[&TASK, &(slot - 24 * 31)],
    )
    .await?;
    if run.total() > 0 {
        tracing::info!(
            messages = run.messages,
            turns = run.turns,
            outbox = run.outbox,
            statuses = run.statuses,
            "inbox retention: rows older than 8 days purged"
        );
    }
    Ok(Ok(run))
}

/// Runs one purge statement (`$1`: the cutoff, `$2`: the batch) until it deletes less than a
/// batch, in small steps (`small_steps.rs`); each statement is its own transaction.
async fn until_done<C: GenericClient>(c: &C, sql: &str, before: i64) -> Result<u64, Error> {
    let stmt = c.prepare_cached(sql).await?;
    delete_in_small_steps(BATCH as u64, || async {
        c.execute(&stmt, &[&before, &BATCH]).await
    })
    .await
}

/// Answered or skipped messages, and their JSON; not the newest of a conversation, not in a
/// conversation a person has now.
const PURGE_MESSAGES: &str = "
WITH doomed AS (
    SELECT i.seq FROM inbound i
    WHERE i.received_at < $1 AND i.state IN ('done', 'skipped')
      AND EXISTS (SELECT 1 FROM inbound n WHERE n.phone_number_id = i.phone_number_id
                  AND n.customer = i.customer AND n.seq > i.seq)
      AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.phone_number_id = i.phone_number_id
                  AND c.customer = i.customer AND c.state = 'human')
    ORDER BY i.seq LIMIT $2
), raw AS (
    DELETE FROM inbound_raw r USING doomed d WHERE r.seq = d.seq
)
DELETE FROM inbound i USING doomed d WHERE i.seq = d.seq";

/// Finished turns none of whose messages is kept, with their reply parts and the parts'
/// delivery statuses.
const PURGE_TURNS: &str = "
WITH doomed AS (
    SELECT t.id FROM turns t
    WHERE t.started_at < $1 AND t.state IN ('done', 'requeued')
      AND NOT EXISTS (SELECT 1 FROM inbound i WHERE i.turn_id = t.id)
    ORDER BY t.id LIMIT $2
), parts AS (
    DELETE FROM reply_parts p USING doomed d WHERE p.turn_id = d.id RETURNING p.outbound_id
), statuses AS (
    DELETE FROM outbound_status s USING parts WHERE s.message_id = parts.outbound_id
)
DELETE FROM turns t USING doomed d WHERE t.id = d.id";

/// Sent or failed outbox messages, with their parts (keyed by the negated id) and statuses.
const PURGE_OUTBOX: &str = "
WITH doomed AS (
    SELECT o.id FROM outbox o
    WHERE o.created_at < $1 AND o.state IN ('sent', 'failed')
    ORDER BY o.id LIMIT $2
), parts AS (
    DELETE FROM reply_parts p USING doomed d WHERE p.turn_id = -d.id RETURNING p.outbound_id
), statuses AS (
    DELETE FROM outbound_status s USING parts WHERE s.message_id = parts.outbound_id
)
DELETE FROM outbox o USING doomed d WHERE o.id = d.id";

/// Old statuses of messages that are no kept reply part of ours (sent from elsewhere, say).
const PURGE_STATUSES: &str = "
DELETE FROM outbound_status WHERE message_id IN (
    SELECT s.message_id FROM outbound_status s
    WHERE s.updated_at < $1
      AND NOT EXISTS (SELECT 1 FROM reply_parts p WHERE p.outbound_id = s.message_id)
    LIMIT $2)";

impl Store {
    /// Start this replica's part of the retention purge (PostgreSQL). SQLite keeps its inbox
    /// as it always has: one process, and every redelivery recognised however late.
    pub fn spawn_retention(&self, stop: tokio_util::sync::CancellationToken) {
        if let Backend::Postgres(db) = &self.backend {
            tokio::spawn(run_forever(db.clone(), stop));
        }
    }

    /// The purge of the slot containing `now_ms` (unix ms) now, unless another replica runs
    /// or ran it; `None` on SQLite, which keeps its inbox.
    pub async fn purge_old_inbox(
        &self,
        now_ms: i64,
    ) -> Result<Option<Result<RetentionRun, RetentionSkipped>>, StoreError> {
        match &self.backend {
            Backend::Postgres(db) => db.run_retention(now_ms).await.map(Some),
            Backend::Sqlite(_) => Ok(None),
        }
    }
}

/// Every replica's loop: look every [`CHECK_EVERY`] whether this slot's purge is done.
async fn run_forever(store: PgStore, stop: tokio_util::sync::CancellationToken) {
    loop {
        match store.run_retention(now_millis()).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "inbox retention failed; next try in 5 minutes"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
