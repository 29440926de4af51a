//! `wagate inbox`: what is waiting, what failed and why, and what Meta sent that was not
//! understood. Read-only; safe beside a running server.

use super::{has_table, human_age, mask_number, one_line, open_read_only, utc_millis, OpsError};
use rusqlite::{params, Connection};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What `wagate inbox` shows.
#[derive(Debug, Clone)]
pub struct InboxOptions {
    /// Also list finished turns (done, requeued), newest first.
    pub all: bool,
    /// Most rows per table (turns, waiting conversations, dead letters).
    pub limit: usize,
    /// Print dead letters' bodies (they may hold personal data).
    pub show_body: bool,
    /// Print users' numbers in full instead of `••••••••1234`.
    pub show_numbers: bool,
}

/// The inbox at one moment.
#[derive(Debug, Serialize)]
pub struct InboxReport {
    pub database: String,
    /// Messages by state: pending, taken, done, failed, skipped.
    pub messages: BTreeMap<String, i64>,
    /// Turns by state: running, done, failed, requeued.
    pub turns: BTreeMap<String, i64>,
    pub dead_letters: i64,
    /// Age of the oldest message not yet answered (pending or in a running turn).
    pub oldest_unanswered_age_seconds: Option<i64>,
    /// Skipped messages by reason.
    pub skipped: Vec<Skipped>,
    /// Conversations with messages waiting for a turn, oldest first.
    pub waiting: Vec<Waiting>,
    /// Running and failed turns (every turn with `--all`), newest first.
    pub turn_list: Vec<TurnRow>,
    /// The newest dead letters.
    pub dead_letter_list: Vec<DeadLetter>,
}

/// Skipped messages sharing one reason.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub reason: String,
    pub count: i64,
}

/// One conversation with pending messages.
#[derive(Debug, Serialize)]
pub struct Waiting {
    pub conversation: String,
    pub phone_number_id: String,
    pub messages: i64,
    pub oldest_age_seconds: i64,
}

/// One turn.
#[derive(Debug, Serialize)]
pub struct TurnRow {
    pub id: i64,
    /// The user's number, masked unless `--show-numbers`.
    pub conversation: String,
    pub phone_number_id: String,
    pub messages: i64,
    pub attempts: i64,
    pub state: String,
    pub started_at: String,
    pub age_seconds: i64,
    pub error: Option<String>,
    /// Reply parts saved for the turn, and how many Meta accepted.
    pub reply_parts: i64,
    pub reply_parts_sent: i64,
}

/// One webhook body (or part of one) that could not be understood.
#[derive(Debug, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub received_at: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Reads the inbox of `<data_dir>/wagate.db`.
pub fn report(data_dir: &Path, options: &InboxOptions) -> Result<InboxReport, OpsError> {
    let conn = open_read_only(data_dir)?;
    let database = data_dir
        .join(crate::inbox::store::DATABASE_FILE)
        .display()
        .to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let mut report = InboxReport {
        database,
        messages: BTreeMap::new(),
        turns: BTreeMap::new(),
        dead_letters: 0,
        oldest_unanswered_age_seconds: None,
        skipped: Vec::new(),
        waiting: Vec::new(),
        turn_list: Vec::new(),
        dead_letter_list: Vec::new(),
    };
    // A file made by `wagate chat` alone has only memory: an empty inbox, not an error.
    if !has_table(&conn, "inbound")? {
        return Ok(report);
    }
    // One read transaction: every number comes from the same snapshot.
    conn.execute_batch("BEGIN")?;
    let result = fill(&conn, options, now, &mut report);
    let _ = conn.execute_batch("COMMIT");
    result.map(|()| report)
}

fn fill(
    conn: &Connection,
    options: &InboxOptions,
    now: i64,
    report: &mut InboxReport,
) -> Result<(), OpsError> {
    let limit = i64::try_from(options.limit).unwrap_or(i64::MAX);
    let show = |user: String| {
        if options.show_numbers {
            user
        } else {
            mask_number(&user)
        }
    };
    report.messages = counts(conn, "SELECT state, COUNT(*) FROM inbound GROUP BY state")?;
    report.turns = counts(conn, "SELECT state, COUNT(*) FROM turns GROUP BY state")?;
    report.dead_letters = conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
    let oldest: Option<i64> = conn.query_row(
        "SELECT MIN(received_at) FROM inbound WHERE state IN ('pending', 'taken')",
        [],
        |r| r.get(0),
    )?;
    report.oldest_unanswered_age_seconds = oldest.map(|t| (now - t).max(0) / 1000);

    let mut stmt = conn.prepare(
        "SELECT COALESCE(note, '(no reason recorded)'), COUNT(*) FROM inbound
         WHERE state = 'skipped' GROUP BY 1 ORDER BY 2 DESC",
    )?;
    report.skipped = stmt
        .query_map([], |r| {
            Ok(Skipped {
                reason: r.get(0)?,
                count: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;

    let mut stmt = conn.prepare(
        "SELECT phone_number_id, user, COUNT(*), MIN(received_at), MIN(seq) FROM inbound
         WHERE state = 'pending' GROUP BY phone_number_id, user ORDER BY 5 LIMIT ?1",
    )?;
    report.waiting = stmt
        .query_map(params![limit], |r| {
            let oldest: i64 = r.get(3)?;
            Ok(Waiting {
                phone_number_id: r.get(0)?,
                conversation: show(r.get(1)?),
                messages: r.get(2)?,
                oldest_age_seconds: (now - oldest).max(0) / 1000,
            })
        })?
        .collect::<Result<_, _>>()?;

    let filter = if options.all {
        ""
    } else {
        "WHERE t.state IN ('running', 'failed')"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT t.id, t.phone_number_id, t.user, t.attempts, t.state, t.started_at, t.error,
                (SELECT COUNT(*) FROM inbound i WHERE i.turn_id = t.id),
                (SELECT COUNT(*) FROM reply_parts p WHERE p.turn_id = t.id),
                (SELECT COUNT(p.outbound_id) FROM reply_parts p WHERE p.turn_id = t.id)
         FROM turns t {filter} ORDER BY t.id DESC LIMIT ?1"
    ))?;
    report.turn_list = stmt
        .query_map(params![limit], |r| {
            let started: i64 = r.get(5)?;
            Ok(TurnRow {
                id: r.get(0)?,
                phone_number_id: r.get(1)?,
                conversation: show(r.get(2)?),
                attempts: r.get(3)?,
                state: r.get(4)?,
                started_at: utc_millis(started),
                age_seconds: (now - started).max(0) / 1000,
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
    report.dead_letter_list = stmt
        .query_map(params![limit], |r| {
            let body: String = r.get(3)?;
            Ok(DeadLetter {
                id: r.get(0)?,
                received_at: utc_millis(r.get(1)?),
                reason: r.get(2)?,
                body: options.show_body.then_some(body),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn counts(conn: &Connection, sql: &str) -> Result<BTreeMap<String, i64>, OpsError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The report as JSON, for scripts.
pub fn render_json(report: &InboxReport) -> Result<String, OpsError> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}

/// The report as the terminal shows it.
pub fn render_text(report: &InboxReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "inbox {}", report.database);
    let _ = writeln!(
        out,
        "messages: {}",
        summary(&report.messages, MESSAGE_STATES)
    );
    let _ = writeln!(out, "turns:    {}", summary(&report.turns, TURN_STATES));
    let _ = writeln!(out, "dead letters: {}", report.dead_letters);
    match report.oldest_unanswered_age_seconds {
        Some(age) => {
            let _ = writeln!(out, "oldest unanswered message: {} ago", human_age(age));
        }
        None => {
            let _ = writeln!(out, "oldest unanswered message: none, nothing is waiting");
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nskipped (recorded, deliberately not answered):");
        for s in &report.skipped {
            let _ = writeln!(out, "  {:>6}  {}", s.count, s.reason);
        }
    }
    if !report.waiting.is_empty() {
        let _ = writeln!(out, "\nwaiting for a turn:");
        let _ = writeln!(
            out,
            "  {:<14} {:<18} {:>5} {:>9}",
            "CONVERSATION", "NUMBER ID", "MSGS", "OLDEST"
        );
        for w in &report.waiting {
            let _ = writeln!(
                out,
                "  {:<14} {:<18} {:>5} {:>9}",
                w.conversation,
                w.phone_number_id,
                w.messages,
                human_age(w.oldest_age_seconds)
            );
        }
    }
    if report.turn_list.is_empty() {
        let _ = writeln!(out, "\nno running or failed turns");
    } else {
        let _ = writeln!(out, "\nturns:");
        let _ = writeln!(
            out,
            "  {:>6} {:<14} {:<18} {:>4} {:>8} {:<9} {:>7} {:>5}  ERROR",
            "TURN", "CONVERSATION", "NUMBER ID", "MSGS", "ATTEMPTS", "STATE", "AGE", "SENT"
        );
        for t in &report.turn_list {
            let sent = if t.reply_parts == 0 {
                "-".to_string()
            } else {
                format!("{}/{}", t.reply_parts_sent, t.reply_parts)
            };
            let _ = writeln!(
                out,
                "  {:>6} {:<14} {:<18} {:>4} {:>8} {:<9} {:>7} {:>5}  {}",
                t.id,
                t.conversation,
                t.phone_number_id,
                t.messages,
                t.attempts,
                t.state,
                human_age(t.age_seconds),
                sent,
                one_line(t.error.as_deref().unwrap_or(""), 100)
            );
        }
        if report.turn_list.iter().any(|t| t.state == "failed") {
            let _ = writeln!(out, "  re-queue a failed turn with `wagate retry TURN`");
        }
    }
    if !report.dead_letter_list.is_empty() {
        let _ = writeln!(out, "\ndead letters (newest first):");
        for d in &report.dead_letter_list {
            let _ = writeln!(
                out,
                "  #{} {}  {}",
                d.id,
                d.received_at,
                one_line(&d.reason, 120)
            );
            if let Some(body) = &d.body {
                let _ = writeln!(out, "      {body}");
            }
        }
    }
    out
}

const MESSAGE_STATES: &[&str] = &["pending", "taken", "done", "failed", "skipped"];
const TURN_STATES: &[&str] = &["running", "done", "failed", "requeued"];

/// `pending 2, taken 0, ...`: the known states always, in their order, then any other.
fn summary(counts: &BTreeMap<String, i64>, known: &[&str]) -> String {
    let mut parts: Vec<String> = known
        .iter()
        .map(|s| format!("{s} {}", counts.get(*s).copied().unwrap_or(0)))
        .collect();
    for (state, n) in counts {
        if !known.contains(&state.as_str()) {
            parts.push(format!("{state} {n}"));
        }
    }
    parts.join(", ")
}
