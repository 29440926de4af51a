//! Operator reports and actions on PostgreSQL (`wagate inbox`, `retry`, the console's failed
//! turns and dead letters): the same snapshot and re-queue as SQLite's `reports.rs`.
//!
//! The snapshot reads in one `REPEATABLE READ READ ONLY` transaction, so its counts and lists
//! agree with each other while replicas keep committing. The re-queue locks the turn's row
//! (`FOR UPDATE`): an operator on the console and one on the command line re-queuing the same
//! turn at once re-queue it once, the second sees `requeued`.

use super::super::reports::{
    DeadLetterRow, InboxSnapshot, Requeue, TurnSummary, WaitingConversation,
};
use super::super::states::{MessageState, TurnState};
use super::super::StoreError;
use super::PgStore;
use deadpool_postgres::GenericClient;
use std::collections::BTreeMap;
use tokio_postgres::{Error, IsolationLevel};

/// The inbox in one snapshot (the caller holds a read transaction): at most `limit` rows per
/// list; every turn when `all`, else the running and failed ones.
pub(super) async fn read_inbox<C: GenericClient>(
    c: &C,
    limit: usize,
    all: bool,
) -> Result<InboxSnapshot, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let counts = |rows: Vec<tokio_postgres::Row>| -> BTreeMap<String, i64> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let mut snapshot = InboxSnapshot {
        messages: counts(
            c.query("SELECT state, COUNT(*) FROM inbound GROUP BY state", &[])
                .await?,
        ),
        turns: counts(
            c.query("SELECT state, COUNT(*) FROM turns GROUP BY state", &[])
                .await?,
        ),
        dead_letters: c
            .query_one("SELECT COUNT(*) FROM dead_letters", &[])
            .await?
            .get(0),
        oldest_unanswered_at: c
            .query_one(
                "SELECT MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
                &[],
            )
            .await?
            .get(0),
        ..InboxSnapshot::default()
    };

    snapshot.skipped = c
        .query(
            "SELECT COALESCE(note, '(no reason recorded)'), COUNT(*) FROM inbound
             WHERE state = $1 GROUP BY 1 ORDER BY 2 DESC, 1",
            &[&MessageState::Skipped.as_str()],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    snapshot.waiting = c
        .query(
            "SELECT phone_number_id, customer, COUNT(*), MIN(received_at), MIN(seq) FROM inbound
             WHERE state = 'pending' GROUP BY phone_number_id, customer ORDER BY 5 LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|r| WaitingConversation {
            phone_number_id: r.get(0),
            user: r.get(1),
            messages: r.get(2),
            oldest_received_at: r.get(3),
        })
        .collect();

    snapshot.turns_list = c
        .query(
            "SELECT t.id, t.phone_number_id, t.customer, t.attempts::bigint, t.state, t.started_at,
                    t.error,
                    (SELECT COUNT(*) FROM inbound i WHERE i.turn_id = t.id),
                    (SELECT COUNT(*) FROM reply_parts p WHERE p.turn_id = t.id),
                    (SELECT COUNT(p.outbound_id) FROM reply_parts p WHERE p.turn_id = t.id)
             FROM turns t WHERE $2 OR t.state IN ($3, $4) ORDER BY t.id DESC LIMIT $1",
            &[
                &limit,
                &all,
                &TurnState::Running.as_str(),
                &TurnState::Failed.as_str(),
            ],
        )
        .await?
        .iter()
        .map(|r| TurnSummary {
            id: r.get(0),
            phone_number_id: r.get(1),
            user: r.get(2),
            attempts: r.get(3),
            state: r.get(4),
            started_at: r.get(5),
            error: r.get(6),
            messages: r.get(7),
            reply_parts: r.get(8),
            reply_parts_sent: r.get(9),
        })
        .collect();

    snapshot.dead_letter_list = c
        .query(
            "SELECT id, received_at, reason, body FROM dead_letters ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(dead_letter_row)
        .collect();
    Ok(snapshot)
}

fn dead_letter_row(r: &tokio_postgres::Row) -> DeadLetterRow {
    DeadLetterRow {
        id: r.get(0),
        received_at: r.get(1),
        reason: r.get(2),
        body: r.get(3),
    }
}

/// Put failed turn `turn_id`'s messages back to pending, inside the caller's transaction
/// (see SQLite's `reports::requeue` for the rules).
pub(super) async fn requeue<C: GenericClient>(
    c: &C,
    turn_id: i64,
    force: bool,
) -> Result<Requeue, Error> {
    let state: Option<String> = c
        .query_opt(
            "SELECT state FROM turns WHERE id = $1 FOR UPDATE",
            &[&turn_id],
        )
        .await?
        .map(|r| r.get(0));
    match state.as_deref().map(|s| (s, TurnState::parse(s))) {
        None => return Ok(Requeue::NotFound),
        Some((_, Some(TurnState::Failed))) => {}
        Some((other, _)) => return Ok(Requeue::NotFailed(other.to_string())),
    }
    let row = c
        .query_one(
            "SELECT COUNT(*), COUNT(outbound_id) FROM reply_parts WHERE turn_id = $1",
            &[&turn_id],
        )
        .await?;
    let (total, sent): (i64, i64) = (row.get(0), row.get(1));
    if sent > 0 && !force {
        return Ok(Requeue::PartlyAnswered {
            sent: sent as usize,
            total: total as usize,
        });
    }
    let messages = c
        .execute(
            "UPDATE inbound SET state = $2, note = NULL WHERE turn_id = $1 AND state = $3",
            &[
                &turn_id,
                &MessageState::Pending.as_str(),
                &MessageState::Failed.as_str(),
            ],
        )
        .await?;
    if messages == 0 {
        return Ok(Requeue::NothingToRequeue);
    }
    c.execute(
        "UPDATE turns SET state = $2 WHERE id = $1",
        &[&turn_id, &TurnState::Requeued.as_str()],
    )
    .await?;
    Ok(Requeue::Done {
        messages: messages as usize,
        parts_already_sent: sent as usize,
    })
}

impl PgStore {
    pub(crate) async fn inbox_snapshot(
        &self,
        limit: usize,
        all: bool,
    ) -> Result<InboxSnapshot, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let snapshot = read_inbox(&tx, limit, all).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(snapshot)
    }

    pub(crate) async fn requeue_turn(
        &self,
        turn_id: i64,
        force: bool,
    ) -> Result<Requeue, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        let done = requeue(&tx, turn_id, force).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(done)
    }

    pub(crate) async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT id, received_at, reason, body FROM dead_letters WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.as_ref().map(dead_letter_row))
    }
}

/// `wagate inbox`, `retry` and `history` with `--database`: the store opened for one command
/// (no migration: an operator's command never changes the schema under running replicas; no
/// lease heartbeat: it answers no conversation), run on a runtime of its own so the commands
/// stay plain blocking functions as on SQLite.
pub(crate) struct PgOperatorDb {
    runtime: tokio::runtime::Runtime,
    store: PgStore,
}

impl PgOperatorDb {
    pub(crate) fn open(url: &super::DatabaseUrl) -> Result<PgOperatorDb, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let store = runtime.block_on(PgStore::open_for_operator(url))?;
        Ok(PgOperatorDb { runtime, store })
    }

    /// The URL without its password.
    pub(crate) fn location(&self) -> &std::path::Path {
        self.store.location()
    }

    pub(crate) fn inbox(&self, limit: usize, all: bool) -> Result<InboxSnapshot, StoreError> {
        self.runtime.block_on(self.store.inbox_snapshot(limit, all))
    }

    pub(crate) fn history(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Vec<crate::memory::MemoryEntry>, StoreError> {
        self.runtime
            .block_on(self.store.memory_window(key.to_owned(), limit, i64::MIN))
    }

    pub(crate) fn opted_out_of(
        &self,
        user: &str,
    ) -> Result<Vec<(String, i64, String)>, StoreError> {
        self.runtime.block_on(async {
            let c = self.store.client().await?;
            super::opt_out::opted_out_of(&c, user)
                .await
                .map_err(|e| self.store.error(e))
        })
    }

    pub(crate) fn requeue(&self, turn_id: i64, force: bool) -> Result<Requeue, StoreError> {
        self.runtime
            .block_on(self.store.requeue_turn(turn_id, force))
    }
}
