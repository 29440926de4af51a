//! The one test kit: [`TestApp::builder`] (the real server with fake Graph and model servers),
//! typed config ([`Channel`], [`Agent`], [`ConfigDir`]), Meta-shaped bodies ([`meta`]), the fakes,
//! and [`TestServer`] for tests that wire the server themselves.

pub mod app;
pub mod browser;
pub mod config;
pub mod external;
pub mod fake_graph;
pub mod fake_llm;
pub mod meta;
pub mod recorder;

pub use app::TestApp;
pub use config::{Agent, Channel, ConfigDir, Model, ASSISTANT};
pub use meta::text_body;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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

/// A server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub base: String,
    pub data: PathBuf,
    pub client: reqwest::Client,
    // Behind locks so a server shared by reference (a `TestApp` behind a view) can be stopped.
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
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
            handler.map(|h| Box::new(move |_: &server::HandlerServices| h) as HandlerFactory);
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
            stop: Mutex::new(Some(stop)),
            task: Mutex::new(Some(task)),
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

    /// Graceful stop (what SIGTERM does), waiting for the server to return. The future owns
    /// what it needs, so it can be spawned while the test goes on.
    pub fn stop(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.stop.lock().unwrap().take();
        let task = self.task.lock().unwrap().take();
        async move {
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            if let Some(task) = task {
                task.await.expect("server task ends cleanly");
            }
        }
    }
}

pub fn sign(body: &[u8]) -> String {
    wagate::whatsapp::signature::sign(SECRET.as_bytes(), body)
}

/// Texts sent to the customer so far, in order.
pub fn sent_texts(graph: &fake_graph::FakeGraph) -> Vec<String> {
    graph
        .text_sends()
        .iter()
        .map(|s| {
            s.body["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
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
