//! Test helpers: a config directory, a running server on port 0, signed posts.

#![allow(dead_code)] // each test module uses a different part of the kit

pub mod browser;
#[path = "../../support/external.rs"]
pub mod external;
#[path = "../../support/fake_graph.rs"]
pub mod fake_graph;
#[path = "../../support/fake_llm.rs"]
pub mod fake_llm;
pub mod recorder;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;
use wagate::config::Config;
use wagate::inbox::store::Durability;
use wagate::inbox::TurnHandler;
use wagate::net::HttpLimits;
use wagate::server::{self, HandlerFactory, ServeOptions};

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WEBHOOK: &str = "/v1/channels/whatsapp/webhook";

/// A config directory on disk, loaded through the real loader.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    /// The given `channels.whatsapp` body (YAML, indented by 4) and one agent named
    /// `whatsapp-assistant` pointing at `model_endpoint`.
    pub fn new(channel_yaml: &str, model_endpoint: &str) -> ConfigDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("agents")).unwrap();
        std::fs::write(
            dir.path().join("channels.yaml"),
            format!("channels:\n  whatsapp:\n{channel_yaml}"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("agents/whatsapp-assistant.agent.yaml"),
            agent_yaml("whatsapp-assistant", model_endpoint),
        )
        .unwrap();
        ConfigDir { dir }
    }

    /// Signed, verify token set, dry run unless `extra` adds a token and number.
    pub fn standard(extra: &str) -> ConfigDir {
        let channel = format!(
            "    verify_token: \"{VERIFY_TOKEN}\"\n    app_secret: \"{SECRET}\"\n    default_agent: whatsapp-assistant\n{extra}"
        );
        ConfigDir::new(&channel, "http://127.0.0.1:9")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self) -> Config {
        Config::load(self.dir.path()).expect("test config is valid")
    }
}

pub fn agent_yaml(name: &str, endpoint: &str) -> String {
    format!(
        r#"apiVersion: astromesh/v1
kind: Agent
metadata:
  name: {name}
spec:
  model:
    primary:
      provider: ollama
      model: "llama3.1:8b"
      endpoint: "{endpoint}"
      timeout_seconds: 5
  prompts:
    system: "You are {{{{ agent_name }}}}."
  orchestration:
    max_iterations: 3
    timeout_seconds: 10
  memory:
    conversational:
      max_turns: 10
      ttl: 3600
"#
    )
}

/// A server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub base: String,
    pub data: PathBuf,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(
        config: Config,
        data: &Path,
        handler: Option<Arc<dyn TurnHandler>>,
    ) -> TestServer {
        Self::start_with(config, data, handler, fake_graph::fast_options()).await
    }

    /// The production responder (agent + Graph client with `graph` options) when `handler` is None.
    pub async fn start_with(
        config: Config,
        data: &Path,
        handler: Option<Arc<dyn TurnHandler>>,
        graph: wagate::whatsapp::graph::GraphOptions,
    ) -> TestServer {
        Self::start_with_limits(config, data, handler, graph, HttpLimits::default()).await
    }

    /// As [`TestServer::start_with`], with the HTTP server's timeouts and limits given.
    pub async fn start_with_limits(
        config: Config,
        data: &Path,
        handler: Option<Arc<dyn TurnHandler>>,
        graph: wagate::whatsapp::graph::GraphOptions,
        http: HttpLimits,
    ) -> TestServer {
        Self::start_with_clock(config, data, handler, graph, http, None).await
    }

    /// As [`TestServer::start_with_limits`], with the server's clock given (the 24-hour
    /// window, opening hours): tests move time instead of waiting.
    pub async fn start_with_clock(
        config: Config,
        data: &Path,
        handler: Option<Arc<dyn TurnHandler>>,
        graph: wagate::whatsapp::graph::GraphOptions,
        http: HttpLimits,
        clock: Option<wagate::handoff::Clock>,
    ) -> TestServer {
        Self::start_full(config, data, None, handler, graph, http, clock).await
    }

    /// The server on PostgreSQL (`--database`) instead of SQLite in `data`.
    pub async fn start_on_database(
        config: Config,
        data: &Path,
        database: wagate::inbox::store::DatabaseUrl,
        handler: Option<Arc<dyn TurnHandler>>,
    ) -> TestServer {
        let graph = fake_graph::fast_options();
        let http = HttpLimits::default();
        Self::start_full(config, data, Some(database), handler, graph, http, None).await
    }

    async fn start_full(
        config: Config,
        data: &Path,
        database: Option<wagate::inbox::store::DatabaseUrl>,
        handler: Option<Arc<dyn TurnHandler>>,
        graph: wagate::whatsapp::graph::GraphOptions,
        http: HttpLimits,
        clock: Option<wagate::handoff::Clock>,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let handler: Option<HandlerFactory> =
            handler.map(|h| Box::new(move |_: &server::Services| h) as HandlerFactory);
        let options = ServeOptions {
            data_dir: data.to_path_buf(),
            database,
            durability: Durability::Normal,
            handler,
            graph,
            env_file: None,
            http,
            clock,
            wake_ups: Default::default(),
        };
        let task = tokio::spawn(async move {
            server::run(listener, config, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let server = TestServer {
            base,
            data: data.to_path_buf(),
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        };
        // Serving means started: the inbox is open and the config watch has its baseline.
        server.get("/healthz").await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST `body` to the webhook signed with the test secret.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        self.post_with_signature(body, Some(&sign(body))).await
    }

    pub async fn post_with_signature(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(WEBHOOK))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().await.expect("server answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("server answers")
    }

    /// Poll `/metrics` until it contains `needle` (or `secs` pass).
    pub async fn wait_for_metric(&self, needle: &str, secs: u64) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let text = self.get("/metrics").await.text().await.unwrap_or_default();
            if text.contains(needle) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                eprintln!("metric {needle} not found in:\n{text}");
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Graceful stop (what SIGTERM does), waiting for the server to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }
}

pub fn sign(body: &[u8]) -> String {
    wagate::whatsapp::signature::sign(SECRET.as_bytes(), body)
}

/// A Meta-shaped body with one text message per `(message_id, from, text)`.
pub fn text_body(messages: &[(&str, &str, &str)]) -> Vec<u8> {
    let msgs: Vec<_> = messages
        .iter()
        .map(|(id, from, text)| {
            serde_json::json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}})
        })
        .collect();
    let contacts: Vec<_> = messages
        .iter()
        .map(|(_, from, _)| serde_json::json!({"profile": {"name": format!("User {from}")}, "wa_id": from}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": contacts,
            "messages": msgs
        }}]}]
    }))
    .unwrap()
}

/// Poll `check` every 10 ms until it is true or `secs` pass.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    check()
}

/// The shared webhook corpus, when this checkout sits beside it.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/webhooks");
    dir.is_dir().then_some(dir)
}

/// Our own fixtures (a subset of the corpus), always present.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
}
