//! `TestApp::builder()`: the real server on port 0 with a fake Graph API and a fake model over
//! real HTTP, its config written from typed values ([`Channel`], [`Agent`]).
//!
//! ```ignore
//! let app = TestApp::builder()
//!     .llm(|_, _| fake_llm::ollama_says("hi"))
//!     .channel(|c| c.console(TOKEN).debounce_ms(0))
//!     .agent(|a| a.max_iterations(8).builtins(&["react"]))
//!     .start()
//!     .await;
//! ```
//!
//! The channel is live against the fake Graph (`Channel::live`) unless `.dry_run()`; the agent
//! is `Agent::assistant` on the fake model. Edits are closures because the fakes' URLs exist
//! only once they are started.

use super::config::{Agent, Channel, ConfigDir, ASSISTANT};
use super::fake_graph::{self, FakeGraph, FAKE_TOKEN};
use super::fake_llm::{self, FakeServer};
use super::{TestServer, PHONE_NUMBER_ID};
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wagate::inbox::TurnHandler;
use wagate::net::HttpLimits;
use wagate::whatsapp::graph::GraphOptions;

type LlmScript = Box<dyn Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync>;
type ChannelEdit = Box<dyn FnOnce(Channel) -> Channel>;
type AgentEdit = Box<dyn FnOnce(Agent) -> Agent>;

/// A running server, its fakes, its config and data directories.
pub struct TestApp {
    pub graph: FakeGraph,
    pub llm: FakeServer,
    pub server: TestServer,
    pub config: ConfigDir,
    pub data: tempfile::TempDir,
    /// Milliseconds added to the real time on the server's clock (the 24-hour window, opening
    /// hours): tests move time instead of waiting.
    pub shift: Arc<AtomicI64>,
    /// The operator console's token, when `.console(token)` opened it.
    pub console_token: Option<String>,
    options: ServerOptions,
}

/// What a restart must start the server with again.
#[derive(Clone)]
struct ServerOptions {
    handler: Option<Arc<dyn TurnHandler>>,
    graph: GraphOptions,
    http: HttpLimits,
}

pub struct TestAppBuilder {
    llm: LlmScript,
    dry_run: bool,
    console_token: Option<String>,
    channel: Vec<ChannelEdit>,
    agent: Vec<AgentEdit>,
    options: ServerOptions,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            llm: Box::new(|_, _| fake_llm::ollama_says("ok")),
            dry_run: false,
            console_token: None,
            channel: Vec::new(),
            agent: Vec::new(),
            options: ServerOptions {
                handler: None,
                graph: fake_graph::fast_options(),
                http: HttpLimits::default(),
            },
        }
    }

    /// Stops the server gracefully (what SIGTERM does) and starts it again on the same config
    /// and data directory, as after a restart; the fakes and their records stay.
    pub async fn restart(mut self) -> TestApp {
        self.server.stop().await;
        self.server = start_server(&self.config, &self.data, &self.shift, &self.options).await;
        self
    }

    /// Moves the server's clock `by` forward.
    pub fn advance_clock(&self, by: Duration) {
        self.shift
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// POSTs a signed webhook body; Meta's delivery must be accepted.
    pub async fn post(&self, body: &[u8]) {
        let response = self.server.post_signed(body).await;
        assert_eq!(response.status(), 200);
    }

    /// A text from `from`, stamped now, accepted.
    pub async fn customer_says(&self, id: &str, from: &str, text: &str) {
        self.post(&super::meta::text(id, from, text, 0)).await;
    }

    /// `request` with the console token as a bearer.
    pub fn bearer(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let token = self
            .console_token
            .as_deref()
            .expect("the console is on: .console(token)");
        request.header("authorization", format!("Bearer {token}"))
    }

    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let request = self.bearer(self.server.client.get(self.server.url(path)));
        status_and_json(request).await
    }

    pub async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self.bearer(self.server.client.post(self.server.url(path)).json(&body));
        status_and_json(request).await
    }

    /// The operator API id of `user`'s conversation (known without asking the server).
    pub fn conversation(&self, user: &str) -> String {
        wagate::handoff::conversation_id(&wagate::inbox::LaneKey {
            phone_number_id: PHONE_NUMBER_ID.into(),
            user: user.into(),
        })
    }

    /// The conversations list, `query` like `?state=human`.
    pub async fn conversations(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.api_get(&format!("/v1/conversations{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `user`'s line of `GET /v1/conversations`, waiting until it is listed.
    pub async fn listed(&self, user: &str) -> Value {
        for _ in 0..200 {
            if let Some(line) = self
                .conversations("")
                .await
                .into_iter()
                .find(|c| c["user"] == user)
            {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("conversation of {user} never listed");
    }

    /// Polls `user`'s line until `check` holds (or 5 s pass); returns the last line seen.
    pub async fn listed_until(&self, user: &str, check: impl Fn(&Value) -> bool) -> Value {
        let mut line = self.listed(user).await;
        for _ in 0..250 {
            if check(&line) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            line = self.listed(user).await;
        }
        line
    }

    /// The id of `user`'s conversation, waiting until it is listed.
    pub async fn conversation_of(&self, user: &str) -> String {
        self.listed(user).await["id"].as_str().unwrap().to_owned()
    }

    /// The state (`agent`, `human`) of conversation `id`.
    pub async fn state_of(&self, id: &str) -> String {
        let list = self.conversations("").await;
        let c = list.iter().find(|c| c["id"] == id).expect("listed");
        c["state"].as_str().unwrap().to_owned()
    }

    /// The messages of conversation `id`, as the operator API shows them.
    pub async fn messages(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .api_get(&format!("/v1/conversations/{id}/messages"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Texts sent to the customer so far.
    pub fn sent_texts(&self) -> Vec<String> {
        super::sent_texts(&self.graph)
    }

    /// Read receipts sent so far.
    pub fn receipts(&self) -> usize {
        self.graph
            .message_requests()
            .iter()
            .filter(|r| r.body["status"] == "read")
            .count()
    }

    /// The chat requests the model received (not `/api/show`), in order.
    pub fn chats(&self) -> Vec<fake_llm::Recorded> {
        self.llm
            .requests()
            .into_iter()
            .filter(|r| r.uri == "/api/chat")
            .collect()
    }
}

async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl TestAppBuilder {
    /// How the fake model answers each request (default: Ollama saying "ok").
    pub fn llm(
        mut self,
        script: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
    ) -> Self {
        self.llm = Box::new(script);
        self
    }

    /// No access token or number: replies are logged, not sent (the fake Graph still runs).
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Opens the operator console and API with `token` (used by [`TestApp::bearer`]).
    pub fn console(mut self, token: &str) -> Self {
        self.console_token = Some(token.to_owned());
        self
    }

    /// Edits `channels.whatsapp`.
    pub fn channel(mut self, edit: impl FnOnce(Channel) -> Channel + 'static) -> Self {
        self.channel.push(Box::new(edit));
        self
    }

    /// Edits the agent (`Agent::assistant` on the fake model).
    pub fn agent(mut self, edit: impl FnOnce(Agent) -> Agent + 'static) -> Self {
        self.agent.push(Box::new(edit));
        self
    }

    /// The agent's model name on the fake server (`llava:7b` for images).
    pub fn model(self, name: &str) -> Self {
        let name = name.to_owned();
        self.agent(move |a| a.model_name(&name))
    }

    /// Turns go to `handler` instead of the production responder.
    pub fn handler(mut self, handler: Arc<dyn TurnHandler>) -> Self {
        self.options.handler = Some(handler);
        self
    }

    /// The Graph client's options (default: `fast_options`, millisecond backoff).
    pub fn graph_options(mut self, options: GraphOptions) -> Self {
        self.options.graph = options;
        self
    }

    /// The HTTP server's timeouts and limits.
    pub fn http_limits(mut self, limits: HttpLimits) -> Self {
        self.options.http = limits;
        self
    }

    /// Starts the fakes, writes the config, starts the server and waits until it serves.
    pub async fn start(self) -> TestApp {
        let graph = FakeGraph::start().await;
        let llm = FakeServer::start(self.llm).await;
        let mut channel = if self.dry_run {
            Channel::dry_run()
        } else {
            Channel::live(graph.base_url(), FAKE_TOKEN)
        };
        if let Some(token) = &self.console_token {
            channel = channel.console(token);
        }
        let channel = self.channel.into_iter().fold(channel, |c, edit| edit(c));
        let agent = self
            .agent
            .into_iter()
            .fold(Agent::assistant(&llm.url), |a, edit| edit(a));
        debug_assert_eq!(agent.name, ASSISTANT);
        let config = ConfigDir::write(&channel, &[agent]);
        let data = tempfile::tempdir().unwrap();
        let shift = Arc::new(AtomicI64::new(0));
        let server = start_server(&config, &data, &shift, &self.options).await;
        TestApp {
            graph,
            llm,
            server,
            config,
            data,
            shift,
            console_token: self.console_token,
            options: self.options,
        }
    }
}

async fn start_server(
    config: &ConfigDir,
    data: &tempfile::TempDir,
    shift: &Arc<AtomicI64>,
    options: &ServerOptions,
) -> TestServer {
    let shift = Arc::clone(shift);
    let clock: wagate::handoff::Clock = Arc::new(move || {
        let now = jiff::Timestamp::now().as_millisecond() + shift.load(Ordering::SeqCst);
        jiff::Timestamp::from_millisecond(now).unwrap()
    });
    TestServer::start_with_clock(
        config.load(),
        data.path(),
        options.handler.clone(),
        options.graph.clone(),
        options.http.clone(),
        Some(clock),
    )
    .await
}
