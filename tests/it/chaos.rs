//! Chaos: a Graph API that fails about 30% of sends, a model that is slow, errors or hangs, and
//! `kill -9` with hundreds of messages in flight. Whatever happens, every acknowledged message
//! is answered exactly once, retries stay within the policy, and one stuck conversation does
//! not hold up the others.

use crate::support::fake_graph::{FakeGraph, FAKE_TOKEN};
use crate::support::fake_llm::{self, FakeServer, Recorded, Reply};
use crate::support::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The send retry policy's attempt cap in the tests (`fake_graph::fast_options`).
const MAX_SEND_ATTEMPTS: usize = 4;
/// The user whose every send Meta refuses with 500.
const POISONED_USER: &str = "15550000666";
/// The user whose model call never returns.
const HANGING_USER: &str = "15550000777";

/// A live channel on `graph_base` (no debounce, a rate limit no test reaches), `edit`
/// applied, and an agent on `llm` with a 4 s model timeout within 6 s a turn.
fn chaos_config(graph_base: &str, llm: &str, edit: impl FnOnce(Channel) -> Channel) -> ConfigDir {
    let channel = Channel::live(graph_base, FAKE_TOKEN)
        .debounce_ms(0)
        .rate_limit(1, 100_000);
    let agent = Agent::assistant(llm)
        .edit_model(|m| m.timeout_seconds(4))
        .orchestration(3, Some(6));
    ConfigDir::write(&edit(channel), &[agent])
}

/// What the flaky Graph saw: attempts per distinct send and the sends it accepted.
#[derive(Default)]
struct GraphLog {
    /// `quoted id | text` → attempts.
    attempts: HashMap<String, usize>,
    /// Quoted message id of every accepted text send, in order.
    accepted: Vec<String>,
    failed: usize,
    total: usize,
}

/// A Graph API that refuses about 30% of requests, deterministically: a send whose key hashes
/// to 0, 1 or 2 (of 10) fails its first attempt with 500, 429 or 503, and one hashing to 0 its
/// second attempt too (429), so every send succeeds within the retry policy, except for the
/// poisoned user, refused every time.
async fn flaky_graph() -> (FakeServer, Arc<Mutex<GraphLog>>) {
    let log = Arc::new(Mutex::new(GraphLog::default()));
    let server = FakeServer::start({
        let log = Arc::clone(&log);
        move |request: &Recorded, _| {
            let body = request.json();
            let mut log = log.lock().unwrap();
            log.total += 1;
            let read_receipt = body["status"] == "read";
            let key = if read_receipt {
                format!("read|{}", body["message_id"].as_str().unwrap_or(""))
            } else {
                format!(
                    "{}|{}",
                    body["context"]["message_id"].as_str().unwrap_or(""),
                    body["text"]["body"].as_str().unwrap_or("")
                )
            };
            let attempt = {
                let n = log.attempts.entry(key.clone()).or_default();
                *n += 1;
                *n
            };
            let bucket = fnv(&key) % 10;
            let fail = if body["to"] == POISONED_USER && !read_receipt {
                Some(500)
            } else {
                match (bucket, attempt) {
                    (0, 1) => Some(500),
                    (1, 1) | (0, 2) => Some(429),
                    (2, 1) => Some(503),
                    _ => None,
                }
            };
            if let Some(status) = fail {
                log.failed += 1;
                return Reply::status(
                    status,
                    json!({"error": {"message": "fake trouble", "type": "OAuthException", "code": 2}}),
                );
            }
            if read_receipt {
                return Reply::json(json!({"success": true}));
            }
            let quoted = body["context"]["message_id"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            log.accepted.push(quoted);
            let id = format!("wamid.out.{}", log.accepted.len());
            Reply::json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": id}],
            }))
        }
    })
    .await;
    (server, log)
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The model: hangs for [`HANGING_USER`], errors on every 7th call, is slow on every 5th.
async fn moody_model() -> FakeServer {
    FakeServer::start(|request, index| {
        let last = fake_llm::messages_of(request)
            .last()
            .and_then(|m| m["content"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if last.contains("HANG") {
            fake_llm::ollama_says("too late").after(Duration::from_secs(60))
        } else if index % 7 == 3 {
            Reply::status(500, json!({"error": "model overloaded"}))
        } else if index % 5 == 1 {
            fake_llm::ollama_says("a slow answer").after(Duration::from_millis(400))
        } else {
            fake_llm::ollama_says("an answer")
        }
    })
    .await
}

/// One inbound message as the inbox holds it.
struct InboxRow {
    message_id: String,
    state: String,
    turn_id: Option<i64>,
}

fn inbox(db: &Path) -> Vec<InboxRow> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut statement) =
        conn.prepare("SELECT message_id, state, turn_id FROM inbound ORDER BY seq")
    else {
        return Vec::new();
    };
    statement
        .query_map([], |r| {
            Ok(InboxRow {
                message_id: r.get(0)?,
                state: r.get(1)?,
                turn_id: r.get(2)?,
            })
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// For every done turn: its state, its last message (the one its reply quotes) and how many of
/// its reply parts Meta accepted.
fn turns(db: &Path) -> HashMap<i64, (String, String, i64)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = conn
        .prepare(
            "SELECT t.id, t.state,
                    (SELECT message_id FROM inbound WHERE turn_id = t.id ORDER BY seq DESC LIMIT 1),
                    (SELECT COUNT(*) FROM reply_parts WHERE turn_id = t.id AND outbound_id IS NOT NULL)
             FROM turns t",
        )
        .unwrap();
    statement
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    r.get::<_, i64>(3)?,
                ),
            ))
        })
        .unwrap()
        .filter_map(Result::ok)
        .collect()
}

/// Every id in `ids` is done, in exactly one done turn, and that turn's reply was accepted by
/// the Graph API exactly once (one accepted send quoting the turn's last message per part 0).
/// Done, or failed after the customer was sent error_reply (no model answered).
fn answered(state: &str) -> bool {
    state == "done" || state == "failed"
}

fn assert_each_answered_once(db: &Path, ids: &HashSet<String>, accepted: &[String]) {
    let rows: Vec<InboxRow> = inbox(db)
        .into_iter()
        .filter(|r| ids.contains(&r.message_id))
        .collect();
    assert_eq!(rows.len(), ids.len(), "every message is in the inbox once");
    let turns = turns(db);
    let mut accepted_per_quote: HashMap<&str, usize> = HashMap::new();
    for quoted in accepted {
        *accepted_per_quote.entry(quoted.as_str()).or_default() += 1;
    }
    let mut turns_seen = HashSet::new();
    for row in &rows {
        // `failed`: no model answered and the customer got error_reply (CONTRACT.md, `inbox`).
        assert!(
            answered(&row.state),
            "{} is answered ({})",
            row.message_id,
            row.state
        );
        let turn_id = row.turn_id.expect("an answered message names its turn");
        let (state, last, parts_accepted) = &turns[&turn_id];
        assert_eq!(state, &row.state, "turn {turn_id}");
        if turns_seen.insert(turn_id) {
            assert!(
                *parts_accepted >= 1 || state == "failed",
                "turn {turn_id} has its reply recorded"
            );
            assert_eq!(
                accepted_per_quote.get(last.as_str()),
                Some(&1),
                "the reply of turn {turn_id} (quoting {last}) was accepted exactly once"
            );
        }
    }
    // Nothing else was answered: every accepted send quotes the last message of one turn.
    let lasts: HashSet<&str> = turns_seen.iter().map(|id| turns[id].1.as_str()).collect();
    for quoted in accepted_per_quote.keys() {
        if ids.contains(*quoted) {
            assert!(
                lasts.contains(quoted),
                "{quoted} was quoted but is not a turn's last message"
            );
        }
    }
}

#[tokio::test]
async fn with_a_flaky_graph_and_a_moody_model_every_message_is_answered_exactly_once() {
    let (graph, graph_log) = flaky_graph().await;
    let llm = moody_model().await;
    let config = chaos_config(&graph.url, &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let server = Arc::new(
        TestServer::start_with(config.load(), data.path(), None, fake_graph::fast_options()).await,
    );
    let db = data.path().join("wagate.db");
    let started = Instant::now();

    // The stuck conversation and the poisoned one first, then 100 messages from 20 users,
    // each user writing in order, the users at once.
    let stuck = text_body(&[("wamid.hang", HANGING_USER, "HANG please")]);
    assert_eq!(server.post_signed(&stuck).await.status(), 200);
    let poisoned = text_body(&[("wamid.poison", POISONED_USER, "hello")]);
    assert_eq!(server.post_signed(&poisoned).await.status(), 200);
    let users: Vec<_> = (0..20)
        .map(|u| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for k in 0..5 {
                    let id = format!("wamid.chaos.{u:02}.{k}");
                    let body = text_body(&[(&id, &format!("1555100{u:04}"), &format!("m{k}"))]);
                    assert_eq!(server.post_signed(&body).await.status(), 200);
                    ids.push(id);
                    tokio::time::sleep(Duration::from_millis(20 * (u % 3) as u64)).await;
                }
                ids
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for user in users {
        ids.extend(user.await.unwrap());
    }
    assert_eq!(ids.len(), 100);

    // All 100 are answered while the stuck conversation still waits for its model.
    let all_done = || {
        inbox(&db)
            .iter()
            .filter(|r| ids.contains(&r.message_id) && answered(&r.state))
            .count()
            == ids.len()
    };
    assert!(eventually(15, all_done).await, "all 100 messages answered");
    let stuck_state = inbox(&db)
        .into_iter()
        .find(|r| r.message_id == "wamid.hang")
        .map(|r| r.state);
    assert!(
        !stuck_state.as_deref().is_some_and(answered),
        "the others finished first ({:?} in): a stuck conversation blocks nobody",
        started.elapsed()
    );

    // The stuck one gets the error reply once its model call times out.
    let stuck_done = || {
        inbox(&db)
            .iter()
            .any(|r| r.message_id == "wamid.hang" && answered(&r.state))
    };
    assert!(
        eventually(10, stuck_done).await,
        "the stuck conversation is answered after its timeout"
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // a duplicate would show up by now

    let log = graph_log.lock().unwrap();
    let mut answered = ids.clone();
    answered.insert("wamid.hang".into());
    assert_each_answered_once(&db, &answered, &log.accepted);
    let failure_share = log.failed as f64 / log.total as f64;
    eprintln!(
        "chaos: {} Graph requests, {} refused, {} sends accepted, {} turns; done in {:?}",
        log.total,
        log.failed,
        log.accepted.len(),
        turns(&db).len(),
        started.elapsed()
    );
    assert!(
        (0.2..0.45).contains(&failure_share),
        "the Graph refused {:.0}% of {} requests",
        failure_share * 100.0,
        log.total
    );
    for (key, attempts) in &log.attempts {
        assert!(
            *attempts <= MAX_SEND_ATTEMPTS,
            "{key} was tried {attempts} times, more than the policy's {MAX_SEND_ATTEMPTS}"
        );
    }
    // The poisoned send was tried exactly as often as the policy allows, then left for later
    // (the turn retries 30 s on, beyond this test).
    let poison_attempts: usize = log
        .attempts
        .iter()
        .filter(|(k, _)| k.starts_with("wamid.poison|"))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(poison_attempts, MAX_SEND_ATTEMPTS, "{:?}", log.attempts);
    assert!(!log.accepted.iter().any(|q| q == "wamid.poison"));
}

/// `wagate serve` as a child process, killed when dropped.
struct Child9 {
    child: Child,
    base: String,
}

impl Child9 {
    async fn start(config: &Path, data: &Path) -> Child9 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        let server = Child9 {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if reqwest::get(format!("{}/healthz", server.base))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("wagate did not start on {}", server.base);
    }
}

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs every body concurrently (`width` at a time); returns the ids answered 200.
async fn post_all(base: &str, bodies: &[(String, Vec<u8>)], width: usize) -> HashSet<String> {
    let client = reqwest::Client::new();
    let url = format!("{base}{WEBHOOK}");
    let queue = Arc::new(Mutex::new(bodies.to_vec()));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let workers: Vec<_> = (0..width)
        .map(|_| {
            let (client, url, queue, acked) = (
                client.clone(),
                url.clone(),
                Arc::clone(&queue),
                Arc::clone(&acked),
            );
            tokio::spawn(async move {
                loop {
                    let Some((id, body)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let sent = client
                        .post(&url)
                        .header("x-hub-signature-256", sign(&body))
                        .body(body)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status() == 200) {
                        acked.lock().unwrap().insert(id);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

/// The kill lands while turns wait for the (slow) model, before any reply part goes out: a
/// crash there must neither lose nor repeat an answer. (A crash between Meta accepting a part
/// and wagate recording it is `kill9.rs`'s subject: settled by the status notification.)
#[tokio::test]
async fn a_kill_9_with_300_messages_in_flight_loses_and_repeats_nothing() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| {
        fake_llm::ollama_says("answer").after(Duration::from_millis(2000))
    })
    .await;
    let config = chaos_config(graph.base_url(), &llm.url, |c| c.max_concurrent_turns(512));
    let data = tempfile::tempdir().unwrap();
    let bodies: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            let id = format!("wamid.k9.{i:03}");
            let body = text_body(&[(&id, &format!("1555200{i:04}"), "hello")]);
            (id, body)
        })
        .collect();

    let first = Child9::start(config.path(), data.path()).await;
    let base = first.base.clone();
    let posting = {
        let bodies = bodies.clone();
        tokio::spawn(async move { post_all(&base, &bodies, 32).await })
    };
    // Kill once about half are acknowledged, the rest still being posted.
    let db = data.path().join("wagate.db");
    assert!(
        eventually(10, || inbox(&db).len() >= 150).await,
        "messages are arriving"
    );
    let mut first = first;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    let acked = posting.await.unwrap();
    eprintln!(
        "kill -9: {} of 300 acknowledged before the kill",
        acked.len()
    );
    assert!(
        acked.len() >= 100 && acked.len() < 300,
        "the kill came mid-flight: {} of 300 acknowledged",
        acked.len()
    );
    assert!(
        graph.text_sends().is_empty(),
        "no reply went out before the kill (the model takes 2 s)"
    );

    // Restart; Meta redelivers what was not acknowledged, and some of what was.
    let second = Child9::start(config.path(), data.path()).await;
    let redeliver: Vec<_> = bodies
        .iter()
        .filter(|(id, _)| !acked.contains(id) || id.ends_with('0'))
        .cloned()
        .collect();
    let redelivered = post_all(&second.base, &redeliver, 32).await;
    assert_eq!(
        redelivered.len(),
        redeliver.len(),
        "the restarted server acknowledges all"
    );

    let all: HashSet<String> = bodies.iter().map(|(id, _)| id.clone()).collect();
    let answered = || {
        let quoted: HashSet<String> = graph
            .text_sends()
            .iter()
            .filter_map(|s| s.body["context"]["message_id"].as_str().map(str::to_owned))
            .collect();
        all.iter().all(|id| quoted.contains(id))
    };
    assert!(eventually(15, answered).await, "every message is answered");
    tokio::time::sleep(Duration::from_millis(500)).await; // a duplicate would show up by now
    let mut counts: HashMap<String, usize> = HashMap::new();
    for send in graph.text_sends() {
        if let Some(id) = send.body["context"]["message_id"].as_str() {
            *counts.entry(id.to_owned()).or_default() += 1;
        }
    }
    for id in &all {
        assert_eq!(counts.get(id), Some(&1), "{id} answered exactly once");
    }
    let quoted: Vec<String> = graph
        .text_sends()
        .iter()
        .filter_map(|s| s.body["context"]["message_id"].as_str().map(str::to_owned))
        .collect();
    assert_each_answered_once(&db, &all, &quoted);
    drop(second);
}
