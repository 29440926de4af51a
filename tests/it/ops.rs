//! Operator commands against the real binary: a database built by the real `Store` and
//! `Memory`, fake Ollama and Graph servers on 127.0.0.1, and a real `wagate serve`.

use crate::support::fake_llm::{FakeServer, Recorded, Reply};
use crate::support::{Agent, Channel, ConfigDir, Model};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use wagate::inbox::store::Durability;
use wagate::inbox::{Batch, InboundState, LaneKey, NewInbound, Store, TurnOutcome};
use wagate::memory::{Memory, MemoryEntry};

const USER: &str = "15551234567";
const BUSINESS: &str = "106540352242922";
const TOKEN: &str = "EAAG-ops-test-token";

/// Runs `wagate ARGS` with none of the operator's environment leaking in.
async fn wagate(args: &[&str]) -> Output {
    wagate_with_env(args, &[]).await
}

async fn wagate_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"));
    command
        .args(args)
        .env_remove("WAGATE_DATA")
        .env_remove("WAGATE_CONFIG")
        .env_remove("WAGATE_LISTEN")
        .env("RUST_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("the wagate binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lane() -> LaneKey {
    LaneKey {
        phone_number_id: BUSINESS.into(),
        user: USER.into(),
    }
}

fn message(id: &str, text: &str) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(),
        display_phone_number: "15550100000".into(),
        contact_name: Some("Ana".into()),
        kind: "text".into(),
        timestamp: 1_700_000_000,
        raw: json!({"id": id, "type": "text", "text": {"body": text}}).to_string(),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

/// A store whose one turn (two messages) failed with `reason`; returns the store and turn id.
async fn failed_turn(dir: &Path, reason: &str) -> (Store, i64) {
    let store = Store::open(dir, Durability::Normal).expect("store opens");
    store
        .record(Batch {
            messages: vec![
                message("wamid.ops.1", "hello"),
                message("wamid.ops.2", "anyone?"),
            ],
            ..Batch::default()
        })
        .await
        .expect("recorded");
    let turn = store
        .claim_turn(lane())
        .await
        .expect("claim")
        .expect("a turn");
    store
        .finish_turn(turn.id, TurnOutcome::Failed(reason.into()))
        .await
        .expect("finished");
    (store, turn.id)
}

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().expect("utf-8 temp path")
}

// ---- wagate inbox ----

#[tokio::test]
async fn inbox_shows_a_failed_turn_with_its_reason_and_masks_the_number() {
    let dir = tempfile::tempdir().unwrap();
    let (store, turn_id) = failed_turn(dir.path(), "model ollama/llava:7b timed out").await;
    store
        .record(Batch {
            dead_letters: vec![(
                "unknown field type in change".into(),
                r#"{"secret":"dead letter body text"}"#.into(),
            )],
            ..Batch::default()
        })
        .await
        .unwrap();

    let out = wagate(&["inbox", "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(&turn_id.to_string()))
        .unwrap_or_else(|| panic!("no row for turn {turn_id} in:\n{text}"));
    assert!(row.contains("failed"), "{row}");
    assert!(row.contains("model ollama/llava:7b timed out"), "{row}");
    assert!(row.contains("••••••••4567"), "{row}");
    assert!(row.contains(BUSINESS), "{row}");
    assert!(
        text.contains("failed 2"),
        "two failed messages counted:\n{text}"
    );
    assert!(!text.contains(USER), "the full number leaked:\n{text}");
    assert!(text.contains("unknown field type in change"), "{text}");
    assert!(!text.contains("dead letter body text"), "{text}");

    let out = wagate(&["inbox", "--data", dir_arg(dir.path()), "--show-body"]).await;
    assert!(stdout(&out).contains("dead letter body text"));
}

#[tokio::test]
async fn inbox_json_gives_scripts_the_counts_and_the_failure_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, turn_id) = failed_turn(dir.path(), "graph error 131047").await;
    let out = wagate(&["inbox", "--data", dir_arg(dir.path()), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(report["messages"]["failed"], 2);
    assert_eq!(report["turns"]["failed"], 1);
    assert_eq!(report["turn_list"][0]["id"], turn_id);
    assert_eq!(report["turn_list"][0]["error"], "graph error 131047");
    assert_eq!(report["turn_list"][0]["messages"], 2);
    assert_eq!(report["turn_list"][0]["conversation"], "••••••••4567");
}

#[tokio::test]
async fn inbox_reports_the_oldest_waiting_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    store
        .record(Batch {
            messages: vec![message("wamid.wait.1", "hi")],
            ..Batch::default()
        })
        .await
        .unwrap();
    let out = wagate(&["inbox", "--data", dir_arg(dir.path())]).await;
    let text = stdout(&out);
    assert!(text.contains("pending 1"), "{text}");
    assert!(text.contains("oldest unanswered message: "), "{text}");
    assert!(!text.contains("nothing is waiting"), "{text}");
    assert!(text.contains("waiting for a turn"), "{text}");
}

#[tokio::test]
async fn inbox_reads_a_database_no_server_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, turn_id) = failed_turn(dir.path(), "stopped server").await;
    drop(store);
    // The writer thread closes its connection (checkpointing the WAL) once the store is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = wagate(&["inbox", "--data", dir_arg(dir.path()), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["turn_list"][0]["id"], turn_id);
}

#[tokio::test]
async fn inbox_without_a_database_exits_2_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let out = wagate(&["inbox", "--data", dir_arg(&missing)]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&missing.join("wagate.db").display().to_string()),
        "{err}"
    );
    assert!(err.contains("--data"), "{err}");
    assert!(!missing.exists(), "inbox must not create the directory");
}

// ---- wagate retry ----

#[tokio::test]
async fn retry_requeues_a_failed_turn_and_the_next_claim_answers_the_same_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, turn_id) = failed_turn(dir.path(), "every model failed").await;
    let saved = store
        .save_reply(turn_id, vec!["unsent part".into()])
        .await
        .unwrap();
    assert!(store.open_lanes().await.unwrap().is_empty());

    // The store stays open, as a running server's would.
    let out = wagate(&["retry", &turn_id.to_string(), "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("re-queued"), "{}", stdout(&out));

    assert_eq!(store.open_lanes().await.unwrap(), vec![lane()]);
    let again = store.claim_turn(lane()).await.unwrap().expect("a new turn");
    assert_ne!(again.id, turn_id);
    let ids: Vec<&str> = again
        .messages
        .iter()
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(ids, ["wamid.ops.1", "wamid.ops.2"]);
    assert_eq!(store.load_reply(turn_id).await.unwrap(), Some(saved));

    let out = wagate(&["inbox", "--data", dir_arg(dir.path()), "--all", "--json"]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let old = report["turn_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == turn_id)
        .expect("the old turn is listed with --all");
    assert_eq!(old["state"], "requeued");
}

#[tokio::test]
async fn retry_refuses_a_turn_whose_reply_meta_already_accepted_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (store, turn_id) = failed_turn(dir.path(), "graph error 131026").await;
    store
        .save_reply(turn_id, vec!["part one".into(), "part two".into()])
        .await
        .unwrap();
    store
        .mark_part_sent(turn_id, 0, "wamid.out.1".into())
        .await
        .unwrap();

    let id = turn_id.to_string();
    let out = wagate(&["retry", &id, "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("1 of 2"), "{err}");
    assert!(err.contains("customer"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(
        store.open_lanes().await.unwrap().is_empty(),
        "nothing re-queued"
    );

    let out = wagate(&["retry", &id, "--data", dir_arg(dir.path()), "--force"]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("second"), "{}", stdout(&out));
    assert_eq!(store.open_lanes().await.unwrap(), vec![lane()]);
    let parts = store.load_reply(turn_id).await.unwrap().unwrap();
    assert_eq!(parts[0].outbound_id.as_deref(), Some("wamid.out.1"));
}

#[tokio::test]
async fn retry_of_an_unknown_turn_exits_1_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, turn_id) = failed_turn(dir.path(), "x").await;
    let out = wagate(&["retry", "9999", "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no turn 9999"), "{}", stderr(&out));

    // Retrying twice: the second finds the turn requeued, not failed.
    let id = turn_id.to_string();
    let first = wagate(&["retry", &id, "--data", dir_arg(dir.path())]).await;
    assert_eq!(first.status.code(), Some(0));
    let second = wagate(&["retry", &id, "--data", dir_arg(dir.path())]).await;
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("not failed"),
        "{}",
        stderr(&second)
    );
}

// ---- wagate history ----

#[tokio::test]
async fn history_prints_the_remembered_conversation_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::open(&dir.path().join("wagate.db")).unwrap();
    let key = format!("wa_{USER}");
    let t0 = 1_735_689_600; // 2025-01-01 00:00:00 UTC
    memory
        .append(
            &key,
            1,
            &[
                MemoryEntry::user("hello, my card is [CARD]", t0),
                MemoryEntry::assistant("Hi! I cannot take card numbers here.", t0 + 2),
            ],
        )
        .await
        .unwrap();
    memory
        .append(
            &key,
            2,
            &[
                MemoryEntry::user("ok, what are your hours?", t0 + 60),
                MemoryEntry::assistant("9 to 5,\nMonday to Friday.", t0 + 62),
            ],
        )
        .await
        .unwrap();
    memory
        .append(
            "chat_helper",
            1,
            &[MemoryEntry::user("from the terminal", t0)],
        )
        .await
        .unwrap();

    let out = wagate(&[
        "history",
        &format!("+{USER}"),
        "--data",
        dir_arg(dir.path()),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let order = [
        "hello, my card is [CARD]",
        "I cannot take card numbers",
        "what are your hours?",
        "9 to 5,",
        "Monday to Friday.",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| {
            text.find(s)
                .unwrap_or_else(|| panic!("{s:?} missing in:\n{text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("2025-01-01 00:00:00 UTC  user"), "{text}");
    assert!(
        text.contains("2025-01-01 00:01:02 UTC  assistant"),
        "{text}"
    );
    assert!(!text.contains("from the terminal"), "{text}");

    let out = wagate(&[
        "history",
        USER,
        "--data",
        dir_arg(dir.path()),
        "--limit",
        "2",
    ])
    .await;
    let text = stdout(&out);
    assert!(!text.contains("[CARD]"), "only the newest two:\n{text}");
    assert!(text.contains("what are your hours?"), "{text}");

    let out = wagate(&[
        "history",
        "--key",
        "chat_helper",
        "--data",
        dir_arg(dir.path()),
    ])
    .await;
    assert!(stdout(&out).contains("from the terminal"));

    let out = wagate(&["history", "+15550000000", "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wa_15550000000"), "{}", stderr(&out));
}

#[tokio::test]
async fn history_marks_a_customer_who_opted_out_and_the_images_kept_as_media_ids() {
    use wagate::inbox::store::{OptChange, OptSource};
    use wagate::memory::MediaRef;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Durability::Normal).unwrap();
    let key = format!("wa_{USER}");
    let photo = MediaRef {
        media_id: "MEDIA-1".into(),
        mime_type: Some("image/jpeg".into()),
        caption: Some("my sofa".into()),
    };
    Memory::new(store.clone())
        .append(
            &key,
            1,
            &[MemoryEntry::user("[Image] my sofa", 1_735_689_600).with_media(vec![photo])],
        )
        .await
        .unwrap();
    let stop = Batch {
        messages: vec![message("wamid.stop", "STOP")],
        opt_changes: vec![OptChange {
            lane: lane(),
            message_id: Some("wamid.stop".into()),
            opt_out: true,
            source: OptSource::Keyword,
            timestamp: 1_700_000_000,
            reply: vec!["bye".into()],
        }],
        ..Batch::default()
    };
    store.record(stop).await.unwrap();

    let out = wagate(&["history", USER, "--data", dir_arg(dir.path())]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("OPTED OUT of business number {BUSINESS}")),
        "{text}"
    );
    assert!(text.contains("sent an opt-out keyword"), "{text}");
    assert!(text.contains("1 image(s) kept as media ids"), "{text}");
}

// ---- wagate check --online ----

/// A fake Ollama with `models` pulled, each with its reported capabilities.
async fn fake_ollama(models: &[(&str, &[&str])]) -> FakeServer {
    let models: Vec<(String, Vec<String>)> = models
        .iter()
        .map(|(name, caps)| {
            (
                name.to_string(),
                caps.iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect();
    FakeServer::start(move |req: &Recorded, _| match (req.method.as_str(), req.uri.as_str()) {
        ("GET", "/api/tags") => Reply::json(json!({
            "models": models.iter().map(|(name, _)| json!({"name": name, "model": name, "size": 1}))
                .collect::<Vec<_>>()
        })),
        ("POST", "/api/show") => {
            let wanted = req.json()["model"].as_str().unwrap_or_default().to_string();
            match models.iter().find(|(name, _)| *name == wanted) {
                Some((_, caps)) => Reply::json(json!({"details": {}, "capabilities": caps})),
                None => Reply::status(404, json!({"error": format!("model '{wanted}' not found")})),
            }
        }
        _ => Reply::status(404, json!({"error": "not found"})),
    })
    .await
}

/// A fake Graph API that knows one token, or answers error 190 to everything.
async fn fake_graph(token_valid: bool) -> FakeServer {
    FakeServer::start(move |req: &Recorded, _| {
        let authorized = req.header("authorization") == Some(format!("Bearer {TOKEN}"));
        let path = req.uri.split('?').next().unwrap_or_default();
        if !(token_valid && authorized) {
            return Reply::status(
                401,
                json!({"error": {"message": "Error validating access token: Session has expired",
                    "type": "OAuthException", "code": 190, "error_subcode": 463,
                    "fbtrace_id": "trace"}}),
            );
        }
        if req.method == "GET" && path == format!("/v25.0/{BUSINESS}") {
            Reply::json(json!({"id": BUSINESS, "display_phone_number": "+1 555-010-0000",
                "verified_name": "Acme Support"}))
        } else {
            Reply::status(
                400,
                json!({"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                    "code": 100, "error_subcode": 33, "fbtrace_id": "trace"}}),
            )
        }
    })
    .await
}

/// A config directory whose agent uses `model` on `ollama`, sending through `graph`.
fn config_dir(ollama: &str, model: &str, graph: Option<&str>) -> ConfigDir {
    let mut channel = Channel::bare("assistant")
        .set("verify_token", json!("v"))
        .set("app_secret", json!("s"));
    if let Some(base) = graph {
        channel = channel
            .set("access_token", json!(TOKEN))
            .set("phone_number_id", json!(BUSINESS))
            .set("graph_api_base", json!(base));
    }
    let agent = Agent::new("assistant", Model::ollama(ollama, model)).set(
        "model",
        json!({"routing": {"strategy": "capability_match"}}),
    );
    ConfigDir::write(&channel, &[agent])
}

async fn check_online(config: &Path) -> Output {
    wagate(&["check", "--online", "--config", dir_arg(config)]).await
}

/// The report line for `subject`, with its status label.
fn line_about<'a>(text: &'a str, subject: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(subject))
        .unwrap_or_else(|| panic!("no line about {subject:?} in:\n{text}"))
}

#[tokio::test]
async fn check_online_passes_when_the_vision_model_is_pulled_and_the_token_is_valid() {
    let ollama = fake_ollama(&[("llava:7b", &["completion", "vision"])]).await;
    let graph = fake_graph(true).await;
    let config = config_dir(&ollama.url, "llava:7b", Some(&graph.url));
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        line_about(&text, "model ollama/llava:7b")
            .trim_start()
            .starts_with("ok"),
        "{text}"
    );
    assert!(
        line_about(&text, "agent assistant").contains("images go to ollama/llava:7b"),
        "{text}"
    );
    let graph_line = line_about(&text, "graph phone number id");
    assert!(graph_line.trim_start().starts_with("ok"), "{text}");
    assert!(graph_line.contains("+1 555-010-0000"), "{text}");
    assert!(!text.contains(TOKEN), "the token was printed:\n{text}");
    let show = ollama
        .requests()
        .into_iter()
        .find(|r| r.uri == "/api/show")
        .expect("capabilities asked");
    assert_eq!(show.json()["model"], "llava:7b");
}

#[tokio::test]
async fn check_online_fails_when_a_model_meant_for_images_has_no_vision() {
    let ollama = fake_ollama(&[("llava:7b", &["completion"])]).await;
    let graph = fake_graph(true).await;
    let config = config_dir(&ollama.url, "llava:7b", Some(&graph.url));
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("agent assistant"))
        .unwrap_or_else(|| panic!("no failing agent line in:\n{text}"));
    assert!(line.contains("no vision"), "{line}");
}

#[tokio::test]
async fn check_online_only_warns_when_no_model_can_see_images() {
    let ollama = fake_ollama(&[("llama3.1:8b", &["completion", "tools"])]).await;
    let config = config_dir(&ollama.url, "llama3.1:8b", None);
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = line_about(&text, "agent assistant");
    assert!(line.trim_start().starts_with("warn"), "{line}");
    assert!(line.contains("images"), "{line}");
    // Dry run: no token to check, said so.
    assert!(
        line_about(&text, "graph: dry run")
            .trim_start()
            .starts_with("skip"),
        "{text}"
    );
}

#[tokio::test]
async fn check_online_fails_with_the_pull_command_when_the_model_is_missing() {
    let ollama = fake_ollama(&[("llama3.1:8b", &["completion", "tools"])]).await;
    let graph = fake_graph(true).await;
    let config = config_dir(&ollama.url, "llava:7b", Some(&graph.url));
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = line_about(&text, "model ollama/llava:7b");
    assert!(line.contains("FAIL"), "{line}");
    assert!(line.contains("ollama pull llava:7b"), "{line}");
}

#[tokio::test]
async fn check_online_fails_and_explains_an_expired_graph_token() {
    let ollama = fake_ollama(&[("llava:7b", &["completion", "vision"])]).await;
    let graph = fake_graph(false).await;
    let config = config_dir(&ollama.url, "llava:7b", Some(&graph.url));
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = line_about(&text, "graph phone number id");
    assert!(line.contains("FAIL"), "{line}");
    assert!(line.contains("190"), "{line}");
    assert!(line.contains("WHATSAPP_ACCESS_TOKEN"), "{line}");
    let request = graph.requests().pop().expect("graph was asked");
    assert!(request
        .uri
        .contains("fields=id,display_phone_number,verified_name"));
}

#[tokio::test]
async fn check_online_fails_when_the_model_server_is_down() {
    let closed = closed_port_url();
    let config = config_dir(&closed, "llava:7b", None);
    let out = check_online(config.path()).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        line_about(&text, "model ollama/llava:7b").contains("unreachable"),
        "{text}"
    );
}

#[tokio::test]
async fn check_with_an_invalid_config_exits_1_before_going_online() {
    let ollama = fake_ollama(&[]).await;
    let config = config_dir(&ollama.url, "llava:7b", None);
    config.write_channel(&Channel::bare("nobody"));
    let out = check_online(config.path()).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ollama.count(), 0, "no online check after an invalid config");
}

// ---- wagate healthcheck ----

/// `http://127.0.0.1:PORT` where nothing listens.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn healthcheck_exits_0_against_a_running_server_and_1_against_a_closed_port() {
    let config = config_dir("http://127.0.0.1:9", "llama3.1:8b", None);
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--config",
            dir_arg(config.path()),
            "--data",
            dir_arg(data.path()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wagate serve starts");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut healthy = None;
    for _ in 0..100 {
        let out = wagate(&["healthcheck", "--url", &url]).await;
        if out.status.code() == Some(0) {
            healthy = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy.is_some(), "healthcheck never passed against {url}");

    // As in the container: no --url, the port taken from WAGATE_LISTEN=0.0.0.0:PORT.
    let listen = format!("0.0.0.0:{port}");
    let out = wagate_with_env(&["healthcheck"], &[("WAGATE_LISTEN", &listen)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let closed = format!("{}/healthz", closed_port_url());
    let out = wagate(&["healthcheck", "--url", &closed]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&closed), "{}", stderr(&out));
}
