//! Exactly once out across `kill -9`: a reply part Meta accepted just before the crash, whose
//! answer the dead process never recorded, is settled after the restart by Meta's status
//! notification (matched by the send's `biz_opaque_callback_data`) and never sent again.
//!
//! The fake Graph plays Meta: it sends a signed `sent` status notification to the webhook for
//! every send it accepts, retried while the server is down. The quick test is in the normal
//! suite; the soak (repeated kills under load, 30% of sends refused) is `#[ignore]`d and run by
//! `.ci/run` when time allows (`cargo test --locked --test it kill9 -- --ignored`).

use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `wagate serve` on a fixed port (Meta's webhook URL does not change across restarts).
struct Server {
    child: Child,
}

impl Server {
    async fn start(config: &Path, data: &Path, port: u16) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_wagate"))
            .args(["--log-format", "text", "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the wagate binary starts");
        let server = Server { child };
        for _ in 0..400 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("wagate did not start on port {port}");
    }

    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepted sends per reply part (by the callback data naming the part).
fn accepted_per_part(graph: &FakeGraph) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, send) in graph.accepted_sends() {
        let part = send.body["biz_opaque_callback_data"]
            .as_str()
            .expect("every send names its part")
            .to_owned();
        *counts.entry(part).or_default() += 1;
    }
    counts
}

/// The inbound messages quoted by accepted sends (each reply's first part quotes its turn's
/// last message).
fn quoted(graph: &FakeGraph) -> HashSet<String> {
    graph
        .accepted_sends()
        .iter()
        .filter_map(|(_, s)| s.body["context"]["message_id"].as_str().map(str::to_owned))
        .collect()
}

/// Every message recorded as answered (`done`) in the inbox.
fn done_messages(db: &Path) -> HashSet<String> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return HashSet::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT message_id FROM inbound WHERE state = 'done'")
    else {
        return HashSet::new();
    };
    statement
        .query_map([], |r| r.get(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn assert_no_part_sent_twice(graph: &FakeGraph) {
    let twice: Vec<_> = accepted_per_part(graph)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "parts Meta accepted twice: {twice:?}");
}

#[tokio::test]
async fn a_part_meta_accepted_just_before_a_kill_9_is_confirmed_by_its_status_not_sent_again() {
    let graph = FakeGraph::start().await;
    // Meta accepts each send at once but answers only 3 s later: the kill lands in between,
    // after Meta has every reply and before wagate has recorded any. Refused sends (30%) are
    // answered at once and retried.
    graph.hold_answers(Duration::from_secs(3));
    graph.flaky(3);
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("answer")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c.debounce_ms(0));
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let webhook = format!("http://127.0.0.1:{port}{WEBHOOK}");

    let first = Server::start(config.path(), data.path(), port).await;
    let ids: Vec<String> = (0..8).map(|i| format!("wamid.held.{i}")).collect();
    let client = reqwest::Client::new();
    for (i, id) in ids.iter().enumerate() {
        let body = text_body(&[(id, &format!("1555300{i:04}"), "hello")]);
        let answer = client
            .post(&webhook)
            .header("x-hub-signature-256", sign(&body))
            .body(body)
            .send()
            .await
            .expect("server answers");
        assert_eq!(answer.status(), 200);
    }
    assert!(
        eventually(30, || graph.accepted_sends().len() == ids.len()).await,
        "Meta accepted every reply: {}",
        graph.accepted_sends().len()
    );
    first.kill_9();

    // Meta's status notifications reach the server once it is back.
    graph.notify_statuses(webhook.clone(), SECRET.to_owned());
    let restarted = Instant::now();
    let _second = Server::start(config.path(), data.path(), port).await;
    let db = data.path().join("wagate.db");
    let all: HashSet<String> = ids.iter().cloned().collect();
    assert!(
        eventually(30, || done_messages(&db).is_superset(&all)).await,
        "every message is answered after the restart"
    );
    assert!(
        restarted.elapsed() < Duration::from_secs(50),
        "settled by the status notifications, not by the 60 s fallback"
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // a resend would show up by now
    assert_no_part_sent_twice(&graph);
    assert_eq!(graph.accepted_sends().len(), ids.len());
    assert!(quoted(&graph).is_superset(&all));
}

/// POSTs every body (`width` at a time) until the server answers 200; returns the ids acked.
async fn post_until_stopped(
    webhook: String,
    bodies: Vec<(String, Vec<u8>)>,
    acked: Arc<Mutex<HashSet<String>>>,
    per_second: u64,
) {
    let client = reqwest::Client::new();
    let pause = Duration::from_micros(1_000_000 / per_second.max(1));
    for (id, body) in bodies {
        loop {
            let answer = client
                .post(&webhook)
                .header("x-hub-signature-256", sign(&body))
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status() == 200) {
                acked.lock().unwrap().insert(id);
                break;
            }
            // Down (killed): Meta redelivers later.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(pause).await;
    }
}

/// Five `kill -9` under a steady 100 msg/s with 30% of sends refused (500, 429, 503) and every
/// accepted send's status notification coming back: no part is ever accepted twice and every
/// acknowledged message is answered. Some parts are left `sending` without Meta having them
/// (the kill landed before the request left), so the last restart waits out the 60 s window.
#[tokio::test]
#[ignore = "soak: about 3 minutes; .ci/run runs it with --ignored when time allows"]
async fn repeated_kill_9_under_load_with_a_flaky_graph_sends_no_part_twice() {
    let graph = FakeGraph::start().await;
    graph.flaky(3);
    let llm = FakeServer::start(|_, index| {
        fake_llm::ollama_says("answer").after(Duration::from_millis(20 * (index % 10) as u64))
    })
    .await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| {
        c.debounce_ms(0).max_concurrent_turns(256)
    });
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let webhook = format!("http://127.0.0.1:{port}{WEBHOOK}");
    graph.notify_statuses(webhook.clone(), SECRET.to_owned());

    let bodies: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| {
            let id = format!("wamid.soak.{i:05}");
            let body = text_body(&[(&id, &format!("1555400{:04}", i % 500), "hello")]);
            (id, body)
        })
        .collect();
    let all: HashSet<String> = bodies.iter().map(|(id, _)| id.clone()).collect();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut server = Some(Server::start(config.path(), data.path(), port).await);
    let posting = tokio::spawn(post_until_stopped(
        webhook.clone(),
        bodies,
        Arc::clone(&acked),
        100,
    ));
    for kill in 0..5 {
        tokio::time::sleep(Duration::from_millis(2500 + 700 * kill)).await;
        server.take().expect("running").kill_9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = Some(Server::start(config.path(), data.path(), port).await);
    }
    posting.await.unwrap();
    let db = data.path().join("wagate.db");
    let answered = eventually(150, || done_messages(&db).is_superset(&all)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_no_part_sent_twice(&graph);
    assert!(
        answered,
        "every message is answered: {} of {} done",
        done_messages(&db).len(),
        all.len()
    );
    // Each conversation's messages are answered by turns whose replies quote their last
    // message; every conversation had its last message quoted.
    drop(server);
}

/// A turn whose tool sent reply buttons before its text: the kill lands after Meta accepted
/// the buttons and before wagate heard so. After the restart the buttons are confirmed by
/// their status notification (never sent twice) and the text follows, once, after them.
#[tokio::test]
async fn a_kill_9_between_a_tool_send_and_the_text_sends_each_exactly_once_in_order() {
    let graph = FakeGraph::start().await;
    graph.hold_answers(Duration::from_secs(3));
    let llm = FakeServer::start(|request, _| {
        if request.uri.contains("/api/show") {
            return fake_llm::Reply::status(404, serde_json::json!({"error": "not found"}));
        }
        let called = fake_llm::messages_of(request)
            .iter()
            .any(|m| m["role"] == "tool");
        if called {
            fake_llm::ollama_says("Tap one of the sizes.")
        } else {
            fake_llm::ollama_calls(
                "reply_buttons",
                serde_json::json!({"body": "Which size?", "buttons": ["Small", "Large"]}),
            )
        }
    })
    .await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c.debounce_ms(0));
    config.write_agent(&Agent::assistant(&llm.url).builtins(&["reply_buttons"]));
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let webhook = format!("http://127.0.0.1:{port}{WEBHOOK}");

    let first = Server::start(config.path(), data.path(), port).await;
    let body = text_body(&[("wamid.tool.kill", "15553000001", "a pizza")]);
    let answer = reqwest::Client::new()
        .post(&webhook)
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("server answers");
    assert_eq!(answer.status(), 200);
    assert!(
        eventually(20, || graph.accepted_sends().len() == 1).await,
        "Meta accepted the buttons"
    );
    first.kill_9();
    assert_eq!(graph.accepted_sends()[0].1.body["type"], "interactive");

    graph.notify_statuses(webhook.clone(), SECRET.to_owned());
    let restarted = Instant::now();
    let _second = Server::start(config.path(), data.path(), port).await;
    let db = data.path().join("wagate.db");
    assert!(
        eventually(30, || done_messages(&db).contains("wamid.tool.kill")).await,
        "the message is answered after the restart"
    );
    assert!(
        restarted.elapsed() < Duration::from_secs(50),
        "settled by the status notification, not by the 60 s fallback"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_no_part_sent_twice(&graph);
    let kinds: Vec<String> = graph
        .accepted_sends()
        .iter()
        .map(|(_, s)| s.body["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["interactive", "text"]);
    assert_eq!(
        llm.requests()
            .iter()
            .filter(|r| r.uri.contains("/api/chat"))
            .count(),
        2,
        "the agent ran once"
    );
}

/// An operator's reply goes out through the same reply-part path: a kill -9 after Meta
/// accepted it and before wagate heard so, and after the restart its status notification
/// settles it: sent once, the message closed as sent.
#[tokio::test]
async fn an_operator_reply_meta_accepted_just_before_a_kill_9_is_not_sent_again() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("agent answer")).await;
    let token = "kill9-operator-token";
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| {
        c.debounce_ms(0).console(token)
    });
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let webhook = format!("{base}{WEBHOOK}");
    let client = reqwest::Client::new();

    let first = Server::start(config.path(), data.path(), port).await;
    let user = "15553000002";
    let body = text_body(&[("wamid.op.kill", user, "hello")]);
    let answer = client
        .post(&webhook)
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("server answers");
    assert_eq!(answer.status(), 200);
    assert!(
        eventually(20, || graph.accepted_sends().len() == 1).await,
        "the agent answered"
    );
    // From now on Meta answers 3 s late: the kill lands after it accepted the reply.
    graph.hold_answers(Duration::from_secs(3));
    let id = wagate::handoff::conversation_id(&wagate::inbox::LaneKey {
        phone_number_id: PHONE_NUMBER_ID.into(),
        user: user.into(),
    });
    let reply = client
        .post(format!("{base}/v1/conversations/{id}/messages"))
        .header("authorization", format!("Bearer {token}"))
        .json(&serde_json::json!({"text": "a person here"}))
        .send()
        .await
        .expect("server answers");
    assert_eq!(reply.status(), 202);
    assert!(
        eventually(20, || graph.accepted_sends().len() == 2).await,
        "Meta accepted the operator's reply"
    );
    first.kill_9();

    graph.notify_statuses(webhook.clone(), SECRET.to_owned());
    let restarted = Instant::now();
    let _second = Server::start(config.path(), data.path(), port).await;
    let db = data.path().join("wagate.db");
    let outbox_sent = || {
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap_or(0)
            == 1
    };
    assert!(
        eventually(30, outbox_sent).await,
        "the reply is closed as sent"
    );
    assert!(
        restarted.elapsed() < Duration::from_secs(50),
        "settled by the status notification, not by the 60 s fallback"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_no_part_sent_twice(&graph);
    let operator_sends = graph
        .accepted_sends()
        .iter()
        .filter(|(_, s)| s.body["text"]["body"] == "a person here")
        .count();
    assert_eq!(operator_sends, 1);
}
