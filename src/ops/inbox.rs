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
mod tests {
    use super::*;
    use crate::inbox::store::testdb::TestDb;
    use crate::inbox::store::{Batch, Durability, InboundState, NewInbound, Store, TurnOutcome};
    use crate::inbox::LaneKey;

    fn message(id: &str, user: &str) -> NewInbound {
        NewInbound {
            message_id: id.into(),
            lane: LaneKey {
                phone_number_id: "PNID".into(),
                user: user.into(),
            },
            display_phone_number: "1".into(),
            contact_name: None,
            kind: "text".into(),
            timestamp: chrono::Utc::now().timestamp(),
            raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"{id}"}}}}"#),
            json: None,
            state: InboundState::Pending,
            note: None,
        }
    }

    /// One answered conversation, one whose turn failed, one waiting, a skipped message and a
    /// dead letter.
    async fn a_day_of_work(store: &Store) {
        let lane = |user: &str| LaneKey {
            phone_number_id: "PNID".into(),
            user: user.into(),
        };
        let mut skipped = message("s1", "15550003333");
        skipped.state = InboundState::Skipped;
        skipped.note = Some("a number no agent serves".into());
        store
            .record(Batch {
                messages: vec![
                    message("a1", "15550001111"),
                    message("f1", "15550002222"),
                    skipped,
                ],
                dead_letters: vec![("not understood".into(), r#"{"x":1}"#.into())],
                ..Batch::default()
            })
            .await
            .unwrap();
        let answered = store
            .claim_turn(lane("15550001111"))
            .await
            .unwrap()
            .unwrap();
        store
            .save_reply(answered.id, vec!["hi".into()])
            .await
            .unwrap();
        store
            .mark_part_sent(answered.id, 0, "wamid.1".into())
            .await
            .unwrap();
        store
            .finish_turn(answered.id, TurnOutcome::Done)
            .await
            .unwrap();
        let failed = store
            .claim_turn(lane("15550002222"))
            .await
            .unwrap()
            .unwrap();
        store
            .finish_turn(failed.id, TurnOutcome::Failed("no model answered".into()))
            .await
            .unwrap();
        store
            .record(Batch {
                messages: vec![message("w1", "15550004444")],
                ..Batch::default()
            })
            .await
            .unwrap();
    }

    /// The report without what differs by database or by the moment it was read.
    fn comparable(report: &InboxReport) -> (serde_json::Value, String) {
        let mut json = serde_json::to_value(report).unwrap();
        json.as_object_mut().unwrap().remove("database");
        json["oldest_unanswered_age_seconds"] = serde_json::Value::Null;
        for list in ["waiting", "turn_list", "dead_letter_list"] {
            for row in json[list].as_array_mut().unwrap() {
                for moment in [
                    "oldest_age_seconds",
                    "age_seconds",
                    "started_at",
                    "received_at",
                ] {
                    row.as_object_mut().unwrap().remove(moment);
                }
            }
        }
        let text: Vec<String> = render_text(report)
            .lines()
            .skip(1) // `inbox <database>`
            .map(|line| {
                line.split_whitespace()
                    .map(|word| {
                        let age = word.len() > 1
                            && word.ends_with(['s', 'm', 'h', 'd'])
                            && word[..word.len() - 1].chars().all(|c| c.is_ascii_digit());
                        if age {
                            "AGE"
                        } else {
                            word
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        (json, text.join("\n"))
    }

    #[test]
    fn wagate_inbox_with_database_prints_the_report_it_prints_on_sqlite() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let Some(db) = runtime.block_on(TestDb::fresh()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        runtime.block_on(async {
            let sqlite = Store::open(dir.path(), Durability::Normal).unwrap();
            let postgres = Store::open_postgres(&db.database_url()).await.unwrap();
            a_day_of_work(&sqlite).await;
            a_day_of_work(&postgres).await;
        });
        let options = InboxOptions {
            all: true,
            limit: 20,
            show_body: true,
            show_numbers: false,
        };
        let on_sqlite = report(dir.path(), &options).unwrap();
        let location = DatabaseLocation::Postgres(Box::new(db.database_url()));
        let on_postgres = report(location, &options).unwrap();
        assert_eq!(on_postgres.turn_list.len(), 2, "{on_postgres:?}");
        assert_eq!(comparable(&on_sqlite), comparable(&on_postgres));
        assert!(
            on_postgres.database.starts_with("postgres"),
            "{}",
            on_postgres.database
        );
        assert!(render_text(&on_postgres).contains("no model answered"));
    }

    #[test]
    fn retry_and_history_with_database_work_on_postgresql() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let Some(db) = runtime.block_on(TestDb::fresh()) else {
            return;
        };
        runtime.block_on(async {
            let postgres = Store::open_postgres(&db.database_url()).await.unwrap();
            a_day_of_work(&postgres).await;
            db.execute(
                "INSERT INTO memory (key, turn_id, position, role, content, created_at)
                 VALUES ('wa_15550001111', 1, 0, 'user', 'f1', extract(epoch FROM now())::bigint)",
            )
            .await;
        });
        let location = || DatabaseLocation::Postgres(Box::new(db.database_url()));
        let failed = report(
            location(),
            &InboxOptions {
                all: false,
                limit: 20,
                show_body: false,
                show_numbers: true,
            },
        )
        .unwrap();
        let turn = failed.turn_list[0].id;
        let requeued = crate::ops::retry::retry(location(), turn, false).unwrap();
        assert_eq!(requeued.messages, 1);
        assert!(matches!(
            crate::ops::retry::retry(location(), turn, false),
            Err(OpsError::TurnNotFailed { .. })
        ));
        let history = crate::ops::history::history(location(), "wa_15550001111", 50).unwrap();
        assert_eq!(history.entries.len(), 1);
        assert_eq!(history.entries[0].content, "f1");
    }
}
