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
    // Turn ids by rank: PostgreSQL's sequence also counts the pool's rolled-back warm-up.
    let mut ids: Vec<i64> = report.turn_list.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    let rank = |id: i64| format!("T{}", ids.iter().position(|&i| i == id).unwrap_or(0) + 1);
    for row in json["turn_list"].as_array_mut().unwrap() {
        let id = row["id"].as_i64().unwrap();
        row["id"] = rank(id).into();
    }
    let mut in_turns = false;
    let text: Vec<String> = render_text(report)
        .lines()
        .skip(1) // `inbox <database>`
        .map(|line| {
            let trimmed = line.trim_start();
            in_turns = (in_turns || trimmed.starts_with("TURN ")) && !trimmed.is_empty();
            let first = line.split_whitespace().next().unwrap_or("");
            let line = match first.parse::<i64>() {
                Ok(id) if in_turns && ids.contains(&id) => line.replacen(first, &rank(id), 1),
                _ => line.to_owned(),
            };
            line.split_whitespace()
                .map(|word| {
                    let age = word.len() > 1
                        && word.ends_with(['s', 'm', 'h', 'd'])
                        && word[..word.len() - 1].chars().all(|c| c.is_ascii_digit());
                    // A dead letter's time of arrival: the two stores received theirs a
                    // moment apart, which may straddle a second (or midnight).
                    let clock = |sep: char, parts: usize| {
                        word.split(sep).count() == parts
                            && word
                                .split(sep)
                                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                    };
                    if age {
                        "AGE"
                    } else if clock(':', 3) {
                        "TIME"
                    } else if clock('-', 3) {
                        "DATE"
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
