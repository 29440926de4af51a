//! Several replicas on one PostgreSQL database: real `wagate serve --database …` processes
//! sharing one fake Graph API and one fake model, each on its own port, as behind a load
//! balancer. Every promise of the contract must hold for all of them together.
//!
//! Needs a PostgreSQL server: `WAGATE_TEST_POSTGRES_URL` (an administrator's URL; each test
//! creates a fresh database from it and drops it after). Without it the tests say how to run
//! them and pass (`source .ci/components.sh` starts a throwaway cluster and sets it). The
//! restart test runs a cluster of its own (`cluster.rs`, `WAGATE_TEST_POSTGRES_BIN`).
//!
//! The harness is self-contained on purpose (the fakes from `tests/support` aside): these
//! tests drive processes, not the in-process `TestServer`.
//!
//! Quick versions run in the default `cargo test`; the long ones (`soak` in their name) are
//! `#[ignore]`d and run by `.ci/run` (`cargo test --locked --test it replicas -- --ignored`).

mod cluster;
mod handoff;
mod order;
mod rate_limit;
mod restart;
mod takeover;

use crate::support::external::component;
use crate::support::fake_graph::{FakeGraph, FAKE_TOKEN};
use crate::support::fake_llm::{self, FakeServer};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SECRET: &str = "replicas-app-secret";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WEBHOOK: &str = "/v1/channels/whatsapp/webhook";

/// A fresh database on the test PostgreSQL server, dropped (connections and all) on drop.
pub struct TestDatabase {
    admin: String,
    name: String,
    /// The URL the replicas use.
    pub url: String,
}

impl TestDatabase {
    /// `None` (after saying how to run the test) when no PostgreSQL is configured.
    pub async fn create() -> Option<TestDatabase> {
        let admin = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL")?;
        Some(Self::create_on(&admin).await)
    }

    /// A fresh database on the server behind the administrator's URL `admin`.
    pub async fn create_on(admin: &str) -> TestDatabase {
        let name = format!("wagate_t_{:016x}", rand::random::<u64>());
        run_sql(admin, &format!("CREATE DATABASE {name}")).await;
        TestDatabase {
            admin: admin.to_owned(),
            url: with_database(admin, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, sql) = (
            self.admin.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // Drop runs inside the test's runtime: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async move {
                    if let Ok((client, connection)) =
                        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(connection);
                        let _ = client.batch_execute(&sql).await;
                    }
                })
        })
        .join();
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs `sql` on `url` (panics on failure: the test cannot go on without it).
pub async fn run_sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A config directory for the replicas: a live channel on `graph`, one agent on `llm`, and
/// `extra` lines (indented by 4) under `channels.whatsapp`.
pub fn write_config(dir: &Path, graph: &FakeGraph, llm: &str, extra: &str) {
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    let channels = format!(
        "channels:\n  whatsapp:\n    verify_token: \"replicas\"\n    app_secret: \"{SECRET}\"\n    \
         access_token: \"{FAKE_TOKEN}\"\n    phone_number_id: \"{PHONE_NUMBER_ID}\"\n    \
         graph_api_base: \"{}\"\n    default_agent: echo\n    debounce_ms: 0\n{extra}",
        graph.base_url()
    );
    let channels = if extra.contains("rate_limit:") {
        channels
    } else {
        channels + "    rate_limit:\n      window_seconds: 1\n      max_messages: 10000\n"
    };
    std::fs::write(dir.join("channels.yaml"), channels).unwrap();
    let agent = format!(
        r#"apiVersion: astromesh/v1
kind: Agent
metadata:
  name: echo
spec:
  model:
    primary:
      provider: ollama
      model: "llama3.1:8b"
      endpoint: "{llm}"
      timeout_seconds: 30
  prompts:
    system: "You repeat what you are told."
  orchestration:
    max_iterations: 2
    timeout_seconds: 60
"#
    );
    std::fs::write(dir.join("agents/echo.agent.yaml"), agent).unwrap();
}

/// The fake model: answers `got <the turn's words>` (the last user message, whose lines are
/// the turn's messages), after `delay`. The words are the message texts (`m<user>x<n>`), so
/// the replies tell which messages each turn answered, in which order.
pub async fn echo_model(delay: Duration) -> FakeServer {
    FakeServer::start(move |request, _| {
        if !request.uri.contains("/api/chat") {
            return fake_llm::Reply::status(404, serde_json::json!({"error": "not found"}));
        }
        let messages = fake_llm::messages_of(request);
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        fake_llm::ollama_says(&format!("got {last_user}")).after(delay)
    })
    .await
}

/// One `wagate serve --database …` process on its own port (and its own `--data`).
pub struct Replica {
    pub base: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica and waits until it answers `/healthz`. `env`: extra variables.
    pub async fn start(config: &Path, database: &str, env: &[(&str, &str)]) -> Replica {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wagate"));
        command
            .args(["--log-format", "text", "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data.path())
            .arg("--database")
            .arg(database)
            .env("RUST_LOG", "error")
            .env("WAGATE_POLL_MS", "200")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("the wagate binary starts");
        let mut replica = Replica {
            base: format!("http://127.0.0.1:{port}"),
            child,
            _data: data,
        };
        for _ in 0..600 {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("wagate serve --database exited at start: {status}");
            }
            if reqwest::get(replica.url("/healthz")).await.is_ok() {
                return replica;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("wagate did not start on port {port}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn webhook(&self) -> String {
        self.url(WEBHOOK)
    }

    /// `kill -9`: no chance to finish or release anything.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sign(body: &[u8]) -> String {
    wagate::whatsapp::signature::sign(SECRET.as_bytes(), body)
}

/// The text of message `n` of `user`: also what the echo model says back.
pub fn word(user: &str, n: usize) -> String {
    format!("m{user}x{n}")
}

/// A Meta-shaped body with one text message.
pub fn text_body(message_id: &str, from: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": from}],
            "messages": [{"from": from, "id": message_id, "timestamp": "1700000000",
                          "type": "text", "text": {"body": text}}]
        }}]}]
    }))
    .unwrap()
}

/// POSTs a signed body; the status, or `None` when the replica did not answer.
pub async fn post(client: &reqwest::Client, webhook: &str, body: &[u8]) -> Option<u16> {
    client
        .post(webhook)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(body))
        .body(body.to_vec())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Delivers a body as Meta does: again (after 200 ms) until it is answered 200, for up to
/// 60 s. Panics when it never is.
pub async fn deliver(client: &reqwest::Client, webhook: &str, body: &[u8]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = post(client, webhook, body).await;
        if status == Some(200) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{webhook} never took the webhook: last answer {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What each customer was told, in the order Meta accepted it: the words of every accepted
/// text reply (`got m…` → the `m…` words), per recipient.
pub fn answered_words(graph: &FakeGraph) -> BTreeMap<String, Vec<String>> {
    let mut told: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, send) in graph.accepted_sends() {
        let to = send.body["to"].as_str().unwrap_or_default().to_owned();
        let text = send.body["text"]["body"].as_str().unwrap_or_default();
        told.entry(to).or_default().extend(
            text.split_whitespace()
                .filter(|w| w.starts_with('m'))
                .map(str::to_owned),
        );
    }
    told
}

/// Every customer was told each of their words exactly once, in the order they wrote them.
/// Returns what is wrong, for the assertion message (`None`: all good).
pub fn check_exactly_once_in_order(
    graph: &FakeGraph,
    expected: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    let told = answered_words(graph);
    let mut wrong = Vec::new();
    for (user, words) in expected {
        let got = told.get(user).cloned().unwrap_or_default();
        if &got != words {
            wrong.push(format!("{user}: expected {words:?}, told {got:?}"));
        }
    }
    for user in told.keys() {
        if !expected.contains_key(user) {
            wrong.push(format!("{user} was written to but never wrote"));
        }
    }
    (!wrong.is_empty()).then(|| wrong.join("\n"))
}

/// Polls `check` every 50 ms until it is true or `secs` pass.
pub async fn within(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// The number in `wagate_<name> N` of a replica's `/metrics` (0 when absent).
pub async fn metric(replica: &Replica, name: &str) -> f64 {
    let text = match reqwest::get(replica.url("/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_database_url_gets_the_test_database_name_in_place_of_its_own() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:55432/postgres", "wagate_t_1"),
        "postgres://postgres@127.0.0.1:55432/wagate_t_1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h:5", "x"), "postgresql://h:5/x");
}
