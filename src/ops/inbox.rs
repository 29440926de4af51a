//! `wagate inbox`: what is waiting, what failed and why, and what Meta sent that was not
//! understood. Read-only; safe beside a running server.

use super::{human_age, mask_number, one_line, utc_millis, OpsError};
use crate::inbox::store::{DatabaseLocation, InboxSnapshot, OperatorDb};
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

/// Reads the inbox of `<data_dir>/wagate.db`, or of PostgreSQL with `--database`.
pub fn report(
    database: impl Into<DatabaseLocation>,
    options: &InboxOptions,
) -> Result<InboxReport, OpsError> {
    let db = OperatorDb::open_at(&database.into(), false)?;
    let snapshot = db.inbox(options.limit, options.all)?;
    Ok(report_from(snapshot, db.path(), options))
}

/// The report of a snapshot of the database at `database` (the CLI's, or the server's own).
pub fn report_from(
    snapshot: InboxSnapshot,
    database: &Path,
    options: &InboxOptions,
) -> InboxReport {
    let now = chrono::Utc::now().timestamp_millis();
    let age = |at: i64| (now - at).max(0) / 1000;
    let show = |user: String| {
        if options.show_numbers {
            user
        } else {
            mask_number(&user)
        }
    };
    InboxReport {
        database: database.display().to_string(),
        messages: snapshot.messages,
        turns: snapshot.turns,
        dead_letters: snapshot.dead_letters,
        oldest_unanswered_age_seconds: snapshot.oldest_unanswered_at.map(age),
        skipped: snapshot
            .skipped
            .into_iter()
            .map(|(reason, count)| Skipped { reason, count })
            .collect(),
        waiting: snapshot
            .waiting
            .into_iter()
            .map(|w| Waiting {
                conversation: show(w.user),
                phone_number_id: w.phone_number_id,
                messages: w.messages,
                oldest_age_seconds: age(w.oldest_received_at),
            })
            .collect(),
        turn_list: snapshot
            .turns_list
            .into_iter()
            .map(|t| TurnRow {
                id: t.id,
                conversation: show(t.user),
                phone_number_id: t.phone_number_id,
                messages: t.messages,
                attempts: t.attempts,
                state: t.state,
                started_at: utc_millis(t.started_at),
                age_seconds: age(t.started_at),
                error: t.error,
                reply_parts: t.reply_parts,
                reply_parts_sent: t.reply_parts_sent,
            })
            .collect(),
        dead_letter_list: snapshot
            .dead_letter_list
            .into_iter()
            .map(|d| DeadLetter {
                id: d.id,
                received_at: utc_millis(d.received_at),
                reason: d.reason,
                body: options.show_body.then_some(d.body),
            })
            .collect(),
    }
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

#[cfg(test)]
mod tests;
