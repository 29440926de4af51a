//! Crash tests against the real binary: `kill -9` at the worst moments, restart on the same
//! data directory, and count what Meta (the fake Graph) received.

use crate::support::fake_graph::{FakeGraph, Reply, FAKE_TOKEN};
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `wagate serve` as a child process.
struct Wagate {
    child: Child,
    base: String,
}

impl Wagate {
    async fn start(config: &Path, data: &Path) -> Wagate {
        Self::start_logging(
            config,
            data,
            &["--log-format", "text"],
            "warn",
            Stdio::inherit(),
        )
        .await
    }

    /// Reading `${VAR}` from `env_file` first (`--env-file`).
    async fn start_with_env_file(config: &Path, data: &Path, env_file: &Path) -> Wagate {
        let flag = format!("--env-file={}", env_file.display());
        Self::start_serving(config, data, &[], &[&flag], "warn", Stdio::inherit()).await
    }

    /// With chosen log flags, `RUST_LOG` level and stderr destination.
    async fn start_logging(
        config: &Path,
        data: &Path,
        log_flags: &[&str],
        level: &str,
        stderr: Stdio,
    ) -> Wagate {
        Self::start_serving(config, data, log_flags, &[], level, stderr).await
    }

    async fn start_serving(
        config: &Path,
        data: &Path,
        log_flags: &[&str],
        serve_flags: &[&str],
        level: &str,
        stderr: Stdio,
    ) -> Wagate {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_wagate"))
            .args(log_flags)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(serve_flags)
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the wagate binary starts");
        // Owned by `Wagate` at once, so its `Drop` reaps the child on every path.
        let wagate = Wagate {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/healthz", wagate.base))
                .send()
                .await
                .is_ok()
            {
                return wagate;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("wagate did not start listening on {}", wagate.base);
    }

    async fn post_signed(&self, body: &[u8]) -> u16 {
        reqwest::Client::new()
            .post(format!("{}{WEBHOOK}", self.base))
            .header("x-hub-signature-256", sign(body))
            .body(body.to_vec())
            .send()
            .await
            .expect("server answers")
            .status()
            .as_u16()
    }

    /// SIGKILL: no shutdown code runs.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Wagate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many accepted-or-attempted sends quote each inbound message id.
fn replies_per_message(graph: &FakeGraph) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for send in graph.text_sends() {
        if let Some(id) = send.body["context"]["message_id"].as_str() {
            *counts.entry(id.to_owned()).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn every_message_acknowledged_before_a_kill_9_is_answered_exactly_once_after_restart() {
    let graph = FakeGraph::start().await;
    // A slow model: the kill lands while turns are waiting for it.
    let llm = FakeServer::start(|_, _| {
        fake_llm::ollama_says("answer").after(Duration::from_millis(1500))
    })
    .await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();

    let first = Wagate::start(config.path(), data.path()).await;
    let ids: Vec<String> = (0..20).map(|i| format!("wamid.crash.{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let body = text_body(&[(id, &format!("1555900{i:04}"), "hello")]);
        assert_eq!(first.post_signed(&body).await, 200);
    }
    first.kill_9();

    let _second = Wagate::start(config.path(), data.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while replies_per_message(&graph).len() < ids.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // time for a duplicate to show up
    let counts = replies_per_message(&graph);
    for id in &ids {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id} must be answered exactly once: {counts:?}"
        );
    }
}

#[tokio::test]
async fn a_crash_between_two_parts_of_a_reply_resumes_without_repeating_a_part() {
    let graph = FakeGraph::start().await;
    let long_reply = format!(
        "First part. {}\n\nSecond part. {}",
        "a ".repeat(1500),
        "b ".repeat(1500)
    );
    let expected_second = long_reply.split("\n\n").nth(1).unwrap().trim().to_owned();
    let llm = FakeServer::start(move |_, _| fake_llm::ollama_says(&long_reply)).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    // Read receipt ok, part 1 accepted, then part 2 keeps failing (Meta having a bad minute).
    graph.script([Reply::ok(), Reply::ok()]);
    graph.script(std::iter::repeat_n(Reply::status(503), 100));

    let first = Wagate::start(config.path(), data.path()).await;
    assert_eq!(
        first
            .post_signed(&text_body(&[("wamid.parts", "15551239999", "long please")]))
            .await,
        200
    );
    // Wait until part 1 is recorded as accepted, then crash while part 2 is being retried.
    let db = data.path().join("wagate.db");
    let recorded = eventually(20, || part_recorded(&db, 0)).await;
    assert!(recorded, "part 1 should be recorded as accepted");
    first.kill_9();

    graph.clear_script(); // Meta is fine again
    let _second = Wagate::start(config.path(), data.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !part_recorded(&db, 1) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = graph.text_sends();
    let first_parts = sends
        .iter()
        .filter(|s| {
            s.body["text"]["body"]
                .as_str()
                .unwrap()
                .starts_with("First part.")
        })
        .count();
    let second_parts: Vec<_> = sends
        .iter()
        .filter(|s| s.body["text"]["body"] == expected_second.as_str())
        .collect();
    assert_eq!(first_parts, 1, "the accepted part is never sent again");
    assert!(!second_parts.is_empty());
    assert!(
        part_recorded(&db, 1),
        "the second part was delivered after the restart"
    );
    assert_eq!(
        llm.count(),
        1,
        "the reply was generated once and resumed from the inbox, not regenerated"
    );
}

/// Whether reply part `index` has an outbound id in the database (read-only peek).
fn part_recorded(db: &Path, index: i64) -> bool {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM reply_parts WHERE idx = ?1 AND outbound_id IS NOT NULL",
        [index],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .unwrap_or(false)
}

#[tokio::test]
async fn sigterm_lets_the_running_turn_finish_and_exits_zero() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| {
        fake_llm::ollama_says("done in time").after(Duration::from_millis(800))
    })
    .await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let mut server = Wagate::start(config.path(), data.path()).await;
    assert_eq!(
        server
            .post_signed(&text_body(&[("wamid.term", "15551238888", "hi")]))
            .await,
        200
    );
    assert!(
        eventually(5, || llm.count() == 1).await,
        "the turn is running"
    );

    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || server.child.wait().expect("reaped"))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
    let sends = graph.text_sends();
    assert_eq!(sends.len(), 1, "the running turn finished before the exit");
    assert_eq!(sends[0].body["text"]["body"], "done in time");
}

#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("hi")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let server = Wagate::start(config.path(), data.path()).await;
    let generation = || async {
        let ready: serde_json::Value = reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["config_generation"].as_u64().unwrap()
    };
    assert_eq!(generation().await, 1);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let mut reloaded = false;
    for _ in 0..100 {
        if generation().await == 2 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "SIGHUP loads the config again (generation 2)");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_never_show_message_text_or_phone_numbers() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("the confidential answer")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let server = Wagate::start_logging(
        config.path(),
        data.path(),
        &["--log-format", "json"],
        "info",
        Stdio::from(log_file),
    )
    .await;
    let phone = "15557654321";
    let body = text_body(&[("wamid.logs", phone, "my secret words")]);
    assert_eq!(server.post_signed(&body).await, 200);
    graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();

    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in &lines {
        assert!(
            line["timestamp"].is_string()
                && line["level"].is_string()
                && line["target"].is_string(),
            "{line}"
        );
    }
    let finished = lines
        .iter()
        .find(|l| l["message"] == "turn_finished")
        .expect("a turn_finished event");
    assert_eq!(finished["outcome"], "answered");
    assert!(finished["duration_ms"].is_number());
    assert_eq!(
        finished["span"]["agent"], "whatsapp-assistant",
        "the turn span names the agent"
    );
    let conversation = finished["span"]["conversation"].as_str().unwrap();
    assert_eq!(conversation.len(), 8, "a short hash, not the number");
    for secret in [
        phone,
        "my secret words",
        "the confidential answer",
        FAKE_TOKEN,
        SECRET,
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the info logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn a_token_rotated_in_the_env_file_is_used_after_the_reload_without_a_restart() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("hi")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| {
        c.set(
            "access_token",
            serde_json::json!("${WHATSAPP_ACCESS_TOKEN}"),
        )
    });
    let data = tempfile::tempdir().unwrap();
    let env_file = data.path().join("wagate.env");
    std::fs::write(&env_file, "WHATSAPP_ACCESS_TOKEN=EAAG-old-token\n").unwrap();
    let server = Wagate::start_with_env_file(config.path(), data.path(), &env_file).await;
    assert_eq!(
        server
            .post_signed(&text_body(&[("wamid.tok.1", "15551232001", "one")]))
            .await,
        200
    );
    let sends = graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert_eq!(
        sends[0].header("authorization"),
        Some("Bearer EAAG-old-token")
    );

    std::fs::write(
        &env_file,
        "WHATSAPP_ACCESS_TOKEN=EAAG-rotated-token-with-another-length\n",
    )
    .unwrap();
    let ready = || async {
        let body: serde_json::Value = reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["config_generation"].as_u64().unwrap()
    };
    let mut reloaded = false;
    for _ in 0..100 {
        if ready().await == 2 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "editing the env file reloads the config");
    assert_eq!(
        server
            .post_signed(&text_body(&[("wamid.tok.2", "15551232001", "two")]))
            .await,
        200
    );
    let sends = graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    assert_eq!(
        sends[1].header("authorization"),
        Some("Bearer EAAG-rotated-token-with-another-length")
    );
}
