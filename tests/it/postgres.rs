//! `wagate serve --database postgres://...`: the real binary on a fresh PostgreSQL database
//! answers a signed webhook message exactly once (a redelivery of the same message is a
//! duplicate), through the fake Graph and LLM servers; while PostgreSQL is unreachable the
//! webhook and `/readyz` answer 503 and nothing is recorded. Skipped, saying how to run it,
//! without `WAGATE_TEST_POSTGRES_URL` (`.ci/run` sets it).

use crate::support::external::component;
use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A database of its own for the test, dropped after it.
struct FreshDatabase {
    admin: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create(admin: String) -> FreshDatabase {
        let name = format!("wagate_it_{:016x}", rand::random::<u64>());
        run(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
        let authority = base.find("://").map_or(0, |i| i + 3);
        let base = match base[authority..].find('/') {
            Some(slash) => &base[..authority + slash],
            None => base,
        };
        let mut url = format!("{base}/{name}");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        FreshDatabase { admin, name, url }
    }

    async fn count(&self, sql: &str) -> i64 {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(connection);
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Refuse (or allow again) connections to this database, cutting the open ones: what a
    /// replica sees while PostgreSQL is down, without stopping the shared test cluster.
    async fn set_reachable(&self, reachable: bool) {
        let mut sql = format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {reachable};",
            self.name
        );
        if !reachable {
            sql.push_str(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}';",
                self.name
            ));
        }
        run(&self.admin, &sql).await;
    }

    async fn drop_it(self) {
        run(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn run(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test cluster answers");
    tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_on_a_fresh_postgresql_database_answers_a_message_exactly_once() {
    let Some(admin) = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let db = FreshDatabase::create(admin).await;
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("hello from postgres")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c.debounce_ms(0));
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["--log-format", "text", "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config.path())
        .arg("--data")
        .arg(data.path())
        .env("WAGATE_DATABASE_URL", &db.url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the wagate binary starts");
    let server = Serve(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "/readyz says ready once the schema is in place");

    let body = text_body(&[("wamid.pg.1", "15551230001", "hi")]);
    for _ in 0..2 {
        // The second post is Meta's redelivery: recorded once, answered once.
        let answer = client
            .post(format!("{base}{WEBHOOK}"))
            .header("x-hub-signature-256", sign(&body))
            .body(body.clone())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(answer.status(), 200);
    }
    let sends = graph.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].body["text"]["body"], "hello from postgres");
    assert_eq!(sends[0].body["context"]["message_id"], "wamid.pg.1");
    let mut answered = 0;
    for _ in 0..200 {
        answered = db
            .count(
                "SELECT COUNT(*) FROM inbound WHERE message_id = 'wamid.pg.1' AND state = 'done'",
            )
            .await;
        if answered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, 1, "the message is recorded once and answered");
    tokio::time::sleep(Duration::from_millis(500)).await; // a second answer would show by now
    assert_eq!(graph.sends().len(), 1, "exactly one reply went out");
    drop(server);
    db.drop_it().await;
}

#[tokio::test]
async fn while_postgresql_is_unreachable_webhooks_and_readyz_answer_503_and_nothing_is_lost() {
    let Some(admin) = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let db = FreshDatabase::create(admin).await;
    let recorder = crate::support::recorder::Recorder::new(Duration::ZERO);
    let config = ConfigDir::dry_run(|c| c.debounce_ms(0));
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(
        config.load(),
        data.path(),
        db.url.parse().expect("a database URL"),
        Some(recorder.clone()),
    )
    .await;
    assert_eq!(server.get("/readyz").await.status(), 200);

    // PostgreSQL becomes unreachable for this database: connections cut, new ones refused.
    db.set_reachable(false).await;
    let body = text_body(&[("wamid.pg.down", "15551230002", "are you there?")]);
    let refused = server.post_signed(&body).await;
    assert_eq!(refused.status(), 503, "not recorded, so not acknowledged");
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert!(
        ready.text().await.unwrap().contains("unreachable"),
        "/readyz names the cause"
    );

    db.set_reachable(true).await;
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbound").await,
        0,
        "the refused webhook left nothing behind"
    );
    // Meta redelivers the refused webhook: recorded and answered now, once.
    assert_eq!(server.post_signed(&body).await.status(), 200);
    assert!(
        eventually(10, || recorder.message_ids() == ["wamid.pg.down"]).await,
        "answered once after PostgreSQL came back: {:?}",
        recorder.message_ids()
    );
    assert_eq!(server.get("/readyz").await.status(), 200);
    server.stop().await;
    db.drop_it().await;
}

/// `wagate inbox|retry|history` as an operator types them, against the replicas' database.
fn ops(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(args)
        .env_remove("WAGATE_DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("the wagate binary runs")
}

#[tokio::test]
async fn the_operator_commands_take_database_and_read_what_the_replicas_recorded() {
    let Some(admin) = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let db = FreshDatabase::create(admin).await;
    // Before any replica set the schema up: "no database", exit 2, and nothing is created.
    let early = ops(&["inbox", "--database", &db.url]);
    assert_eq!(early.status.code(), Some(2), "{early:?}");
    assert!(String::from_utf8_lossy(&early.stderr).contains("no database at postgres"));
    // Not a PostgreSQL URL: exit 2, and the password is never echoed.
    let wrong = ops(&[
        "inbox",
        "--database",
        "mysql://ana:s3cr3t@db.example/wagate",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("s3cr3t"));

    let recorder = crate::support::recorder::Recorder::new(Duration::ZERO);
    let config = ConfigDir::dry_run(|c| c.debounce_ms(0));
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(
        config.load(),
        data.path(),
        db.url.parse().expect("a database URL"),
        Some(recorder.clone()),
    )
    .await;
    let body = text_body(&[("wamid.pg.ops", "15551230009", "hello")]);
    assert_eq!(server.post_signed(&body).await.status(), 200);
    assert!(eventually(10, || recorder.message_ids() == ["wamid.pg.ops"]).await);
    let done = "SELECT COUNT(*) FROM inbound WHERE state = 'done'";
    for _ in 0..200 {
        if db.count(done).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let inbox = ops(&["inbox", "--all", "--database", &db.url]);
    assert_eq!(inbox.status.code(), Some(0), "{inbox:?}");
    let shown = String::from_utf8_lossy(&inbox.stdout);
    assert!(shown.starts_with("inbox postgres"), "{shown}");
    assert!(
        shown.contains("messages: pending 0, taken 0, done 1"),
        "{shown}"
    );
    assert!(shown.contains("••••••••0009"), "numbers masked: {shown}");
    let json = ops(&["inbox", "--json", "--database", &db.url]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(report["messages"]["done"], 1);

    let retry = ops(&["retry", "999", "--database", &db.url]);
    assert_eq!(retry.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&retry.stderr).contains("no turn 999"));
    server.stop().await;
    db.drop_it().await;
}

#[tokio::test]
async fn a_130429_answered_to_one_replica_holds_back_the_sends_of_the_other() {
    use crate::support::fake_graph::{fast_options, Reply, FAKE_PHONE_NUMBER_ID};
    use wagate::whatsapp::graph::GraphClient;
    let Some(admin) = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let db = FreshDatabase::create(admin).await;
    let url: wagate::inbox::store::DatabaseUrl = db.url.parse().expect("a database URL");
    let graph = FakeGraph::start().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = wagate::inbox::Store::open_postgres(&url)
            .await
            .expect("opens");
        let mut options = fast_options();
        options.shared_rate_limit = store.shared_rate_limit();
        assert!(options.shared_rate_limit.is_some(), "shared on PostgreSQL");
        let client = GraphClient::with_options(&graph.channel(), options).expect("client");
        replicas.push((store, client));
    }
    // Meta says "throughput reached, retry in 2 s" to replica A's first send.
    graph.script_sends([Reply::graph_error(400, 130429).with_header("retry-after", "2")]);
    let a = replicas[0].1.clone();
    let send_a = tokio::spawn(async move {
        a.send_text(FAKE_PHONE_NUMBER_ID, "34600000001", "from A", None)
            .await
    });
    let mut paused = 0;
    for _ in 0..200 {
        paused = db
            .count("SELECT COUNT(*) FROM rate_limit_channels WHERE paused_until > 0")
            .await;
        if paused == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(paused, 1, "A shared Meta's pause through the database");

    // Replica B had sent nothing: its first send waits the pause out too.
    let started = std::time::Instant::now();
    replicas[1]
        .1
        .send_text(FAKE_PHONE_NUMBER_ID, "34600000002", "from B", None)
        .await
        .expect("B's message goes out after the pause");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "B sent {waited:?} after A's 130429"
    );
    send_a
        .await
        .unwrap()
        .expect("A's message goes out after its retry");
    assert_eq!(
        graph.accepted_sends().len(),
        2,
        "both delivered, none dropped"
    );
    drop(replicas);
    db.drop_it().await;
}
