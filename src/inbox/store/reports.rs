//! The operator's reports and actions on the inbox: the snapshot `wagate inbox` and the
//! console show (counts, waiting conversations, turns, dead letters), a failed turn re-queued
//! (`wagate retry`, the console's retry button), a dead letter read back. The types are the
//! same on both backends; the SQL here is SQLite's, run either on the CLI's own connection
//! (`operator.rs`) or inside the server on the store's reader and writer. PostgreSQL's is
//! `postgres/operator.rs`.

use super::states::{MessageState, TurnState};
use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;

/// The inbox at one moment, as stored (numbers unmasked, times in unix milliseconds).
#[derive(Debug, Default)]
pub struct InboxSnapshot {
    /// Messages by state.
    pub messages: BTreeMap<String, i64>,
    /// Turns by state.
    pub turns: BTreeMap<String, i64>,
    pub dead_letters: i64,
    /// When the oldest message not yet answered (pending or taken) arrived.
    pub oldest_unanswered_at: Option<i64>,
    /// Skipped messages by reason (most frequent first).
    pub skipped: Vec<(String, i64)>,
    /// Conversations with pending messages, oldest first.
    pub waiting: Vec<WaitingConversation>,
    /// Running and failed turns (every turn when asked), newest first.
    pub turns_list: Vec<TurnSummary>,
    /// The newest dead letters.
    pub dead_letter_list: Vec<DeadLetterRow>,
}

#[derive(Debug)]
pub struct WaitingConversation {
    pub phone_number_id: String,
    pub user: String,
    pub messages: i64,
    pub oldest_received_at: i64,
}

#[derive(Debug)]
pub struct TurnSummary {
    pub id: i64,
    pub phone_number_id: String,
    pub user: String,
    pub attempts: i64,
    /// The stored state (a state this version does not know is shown as stored).
    pub state: String,
    pub started_at: i64,
    pub error: Option<String>,
    pub messages: i64,
    pub reply_parts: i64,
    pub reply_parts_sent: i64,
}

#[derive(Debug)]
pub struct DeadLetterRow {
    pub id: i64,
    pub received_at: i64,
    pub reason: String,
    pub body: String,
}

/// What `requeue` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// The failed turn's messages are pending again; the turn is `requeued`.
    Done {
        messages: usize,
        parts_already_sent: usize,
    },
    NotFound,
    /// Only failed turns can be re-queued.
    NotFailed(String),
    /// Meta accepted part of the reply; re-queuing needs `force`.
    PartlyAnswered {
        sent: usize,
        total: usize,
    },
    /// The failed turn has no failed messages left.
    NothingToRequeue,
}

/// The inbox in one snapshot (the caller holds a read transaction): at most `limit` rows per
/// list; every turn when `all`, else the running and failed ones.
pub(super) fn read_inbox(
    conn: &Connection,
    limit: usize,
    all: bool,
) -> rusqlite::Result<InboxSnapshot> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut snapshot = InboxSnapshot {
        messages: counts(conn, "SELECT state, COUNT(*) FROM inbound GROUP BY state")?,
        turns: counts(conn, "SELECT state, COUNT(*) FROM turns GROUP BY state")?,
        dead_letters: conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?,
        oldest_unanswered_at: conn.query_row(
            "SELECT MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
            [],
            |r| r.get(0),
        )?,
        ..InboxSnapshot::default()
    };

    let mut stmt = conn.prepare(
        "SELECT COALESCE(note, '(no reason recorded)'), COUNT(*) FROM inbound
         WHERE state = ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    snapshot.skipped = stmt
        .query_map(params![MessageState::Skipped.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(
        "SELECT phone_number_id, user, COUNT(*), MIN(received_at), MIN(seq) FROM inbound
         WHERE state = 'pending' GROUP BY phone_number_id, user ORDER BY 5 LIMIT ?1",
    )?;
    snapshot.waiting = stmt
        .query_map(params![limit], |r| {
            Ok(WaitingConversation {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
                messages: r.get(2)?,
                oldest_received_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;

    // `?2 = 1`: every turn; else the running and failed ones.
    let mut stmt = conn.prepare(
        "SELECT t.id, t.phone_number_id, t.user, t.attempts, t.state, t.started_at, t.error,
                (SELECT COUNT(*) FROM inbound i WHERE i.turn_id = t.id),
                (SELECT COUNT(*) FROM reply_parts p WHERE p.turn_id = t.id),
                (SELECT COUNT(p.outbound_id) FROM reply_parts p WHERE p.turn_id = t.id)
         FROM turns t WHERE ?2 = 1 OR t.state IN (?3, ?4) ORDER BY t.id DESC LIMIT ?1",
    )?;
    let args = params![
        limit,
        all,
        TurnState::Running.as_str(),
        TurnState::Failed.as_str()
    ];
    snapshot.turns_list = stmt
        .query_map(args, |r| {
            Ok(TurnSummary {
                id: r.get(0)?,
                phone_number_id: r.get(1)?,
                user: r.get(2)?,
                attempts: r.get(3)?,
                state: r.get(4)?,
                started_at: r.get(5)?,
                error: r.get(6)?,
                messages: r.get(7)?,
                reply_parts: r.get(8)?,
                reply_parts_sent: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(
        "SELECT id, received_at, reason, body FROM dead_letters ORDER BY id DESC LIMIT ?1",
    )?;
    snapshot.dead_letter_list = stmt
        .query_map(params![limit], |r| {
            Ok(DeadLetterRow {
                id: r.get(0)?,
                received_at: r.get(1)?,
                reason: r.get(2)?,
                body: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(snapshot)
}

/// Put failed turn `turn_id`'s messages back to pending (see [`OperatorDb::requeue`]), inside
/// the caller's write transaction: the CLI's own, or the server's writer.
pub(super) fn requeue(conn: &Connection, turn_id: i64, force: bool) -> rusqlite::Result<Requeue> {
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM turns WHERE id = ?1",
            params![turn_id],
            |r| r.get(0),
        )
        .optional()?;
    match state.as_deref().map(|s| (s, TurnState::parse(s))) {
        None => return Ok(Requeue::NotFound),
        Some((_, Some(TurnState::Failed))) => {}
        Some((other, _)) => return Ok(Requeue::NotFailed(other.to_string())),
    }
    let (total, sent): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COUNT(outbound_id) FROM reply_parts WHERE turn_id = ?1",
        params![turn_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if sent > 0 && !force {
        return Ok(Requeue::PartlyAnswered {
            sent: sent as usize,
            total: total as usize,
        });
    }
    let messages = conn.execute(
        "UPDATE inbound SET state = ?2, note = NULL WHERE turn_id = ?1 AND state = ?3",
        params![
            turn_id,
            MessageState::Pending.as_str(),
            MessageState::Failed.as_str()
        ],
    )?;
    if messages == 0 {
        return Ok(Requeue::NothingToRequeue);
    }
    conn.execute(
        "UPDATE turns SET state = ?2 WHERE id = ?1",
        params![turn_id, TurnState::Requeued.as_str()],
    )?;
    Ok(Requeue::Done {
        messages,
        parts_already_sent: sent as usize,
    })
}

fn counts(conn: &Connection, sql: &str) -> rusqlite::Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.collect()
}

/// The same operator reports and actions from inside the server: reads on the store's read
/// connection, the re-queue through its writer (the one owner of writes), never a connection
/// of their own.
impl super::Sqlite {
    /// As [`OperatorDb::inbox`].
    pub(super) async fn inbox_snapshot(
        &self,
        limit: usize,
        all: bool,
    ) -> Result<InboxSnapshot, StoreError> {
        self.reader
            .read(move |conn| {
                // One read transaction: the counts and the lists agree.
                conn.execute_batch("BEGIN")?;
                let snapshot = read_inbox(conn, limit, all);
                let _ = conn.execute_batch("COMMIT");
                snapshot
            })
            .await
    }

    /// As [`OperatorDb::requeue`].
    pub(super) async fn requeue_turn(
        &self,
        turn_id: i64,
        force: bool,
    ) -> Result<Requeue, StoreError> {
        self.call(move |conn| requeue(conn, turn_id, force)).await
    }

    /// Dead letter `id` with its body; `None` when there is none (never was, or retried).
    pub(super) async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError> {
        self.reader
            .read(move |conn| {
                conn.query_row(
                    "SELECT id, received_at, reason, body FROM dead_letters WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(DeadLetterRow {
                            id: r.get(0)?,
                            received_at: r.get(1)?,
                            reason: r.get(2)?,
                            body: r.get(3)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }
}
