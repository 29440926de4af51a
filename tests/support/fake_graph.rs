//! A fake Meta Graph API: a real axum server on 127.0.0.1:0 that speaks the wire protocol.
//!
//! It records every request (method, path, headers, JSON body, arrival time), answers
//! `POST /{version}/{phone_number_id}/messages` from a script (then with a default success:
//! a `wamid.fake.N` id for sends, `{"success":true}` for read receipts), and serves media:
//! `GET /{version}/{media_id}` returns metadata pointing at `/media-download/{media_id}`, which
//! serves the bytes only with a bearer header, like Meta's media host.
//!
//! Like Meta, it can send status notifications back: after [`FakeGraph::notify_statuses`],
//! every send it accepts gets a signed `sent` status notification POSTed to the server's
//! webhook (echoing the send's `biz_opaque_callback_data`), retried while the server is down.
//! [`FakeGraph::flaky`] makes it refuse a share of sends with 5xx/429, deterministically.
//!
//! Include it from a test file with `#[path = "support/fake_graph.rs"] mod fake_graph;`.
#![allow(dead_code)] // each test binary uses a different part of it

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use wagate::config::WhatsAppChannel;
use wagate::whatsapp::graph::{GraphOptions, RetryPolicy};

/// The access token of [`FakeGraph::channel`].
pub const FAKE_TOKEN: &str = "EAAG-fake-access-token";
/// The business phone number id of [`FakeGraph::channel`].
pub const FAKE_PHONE_NUMBER_ID: &str = "106540352242922";
/// The Graph version of [`FakeGraph::channel`].
pub const FAKE_VERSION: &str = "v25.0";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer to a `POST .../messages`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `None`: the default success body for the request.
    pub body: Option<Value>,
    /// Wait this long before answering (to provoke client timeouts).
    pub delay: Duration,
}

impl Reply {
    /// 200 with the default body (a fresh wamid for a send).
    pub fn ok() -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: None,
            delay: Duration::ZERO,
        }
    }

    /// A bare status with an empty JSON object body.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            body: Some(json!({})),
            ..Reply::ok()
        }
    }

    /// A Graph error answer with `code` and Meta's usual fields.
    pub fn graph_error(status: u16, code: i64) -> Self {
        Reply {
            status,
            body: Some(json!({
                "error": {
                    "message": format!("(#{code}) fake Graph error"),
                    "type": "OAuthException",
                    "code": code,
                    "error_data": { "messaging_product": "whatsapp", "details": format!("details of {code}") },
                    "fbtrace_id": format!("trace-{code}"),
                }
            })),
            ..Reply::ok()
        }
    }

    /// The same answer with an extra header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same answer with this body.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The same answer, given only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the media host serves for one media id.
#[derive(Debug, Clone)]
pub enum MediaBody {
    /// These bytes, with a Content-Length.
    Bytes(Vec<u8>),
    /// Zeros, chunked, no Content-Length, until the client hangs up (or 1 GiB): a lying server.
    Endless,
}

/// A media object: its metadata answer and its bytes.
#[derive(Debug, Clone)]
pub struct FakeMedia {
    pub mime_type: String,
    /// `file_size` exactly as the metadata answer shows it (number, string, or `Null` to omit).
    pub file_size: Value,
    pub body: MediaBody,
}

impl FakeMedia {
    /// Honest media: declared size (as a number) equals the bytes served.
    pub fn honest(mime_type: &str, bytes: Vec<u8>) -> Self {
        FakeMedia {
            mime_type: mime_type.into(),
            file_size: json!(bytes.len()),
            body: MediaBody::Bytes(bytes),
        }
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    script: VecDeque<Reply>,
    /// Answers for the next sends only (read receipts pass by), used before `script`.
    send_script: VecDeque<Reply>,
    media: HashMap<String, FakeMedia>,
    sends_accepted: u64,
    /// Every send accepted (given a wamid), with that wamid: text, interactive, media,
    /// location, reaction and template sends alike.
    accepted: Vec<(String, RecordedRequest)>,
    /// Refuse this many sends of every 10 (see [`FakeGraph::flaky`]).
    flaky_tenths: u64,
    sends_seen: u64,
    /// Where status notifications go, once [`FakeGraph::notify_statuses`] was called.
    statuses: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
    /// Status notifications of sends accepted before that, delivered first.
    held_statuses: Vec<Value>,
    /// Answer accepted sends only after this long (Meta has the message meanwhile).
    hold_answers: Duration,
}

struct Shared {
    base_url: String,
    state: Mutex<State>,
    /// Bytes of each media body actually produced by the server.
    served: Mutex<HashMap<String, Arc<AtomicU64>>>,
    arrived: Notify,
}

/// A running fake Graph server; stops when dropped.
pub struct FakeGraph {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGraph {
    /// Starts the server on 127.0.0.1 with a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            state: Mutex::new(State::default()),
            served: Mutex::new(HashMap::new()),
            arrived: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGraph { shared, task }
    }

    /// `http://127.0.0.1:PORT`, to use as `graph_api_base`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// A live (not dry-run) channel pointing at this server, with a generous rate limit.
    pub fn channel(&self) -> WhatsAppChannel {
        serde_json::from_value(json!({
            "default_agent": "test-agent",
            "access_token": FAKE_TOKEN,
            "phone_number_id": FAKE_PHONE_NUMBER_ID,
            "graph_api_base": self.base_url(),
            "graph_api_version": FAKE_VERSION,
            "rate_limit": { "window_seconds": 1, "max_messages": 1000 },
        }))
        .expect("a valid channel")
    }

    /// The same channel with an empty access token: dry run.
    pub fn dry_run_channel(&self) -> WhatsAppChannel {
        let mut channel = self.channel();
        channel.access_token = wagate::secret::Secret::default();
        channel
    }

    /// Answers for the next `POST .../messages` requests, in order; after them, default successes.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Answers for the next sends only, in order: read receipts do not use them up.
    pub fn script_sends(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().send_script.extend(replies);
    }

    /// Refuses about `tenths` of every 10 sends not otherwise scripted, alternating 500, 429
    /// and 503, deterministically (by arrival count). Read receipts are never refused.
    pub fn flaky(&self, tenths: u64) {
        self.lock().flaky_tenths = tenths;
    }

    /// Answers every accepted send only `delay` after accepting it: a window in which Meta has
    /// the message and the sender does not know yet.
    pub fn hold_answers(&self, delay: Duration) {
        self.lock().hold_answers = delay;
    }

    /// From now on, like Meta, POST a signed `sent` status notification to `webhook_url` for
    /// every send accepted (those accepted earlier first), echoing its
    /// `biz_opaque_callback_data`. Each notification is retried every 50 ms until the webhook
    /// answers 200 (while the server is down, say), so none is lost.
    pub fn notify_statuses(&self, webhook_url: String, app_secret: String) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        {
            let mut state = self.lock();
            for held in state.held_statuses.drain(..) {
                let _ = tx.send(held);
            }
            state.statuses = Some(tx);
        }
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Some(body) = rx.recv().await {
                // Each notification on its own, like Meta's: one the server is slow to take
                // does not hold back the others.
                let (client, url, secret) =
                    (client.clone(), webhook_url.clone(), app_secret.clone());
                tokio::spawn(async move { deliver_status(&client, &url, &secret, &body).await });
            }
        });
    }

    /// The sends accepted (answered with a wamid), with that wamid, in order.
    pub fn accepted_sends(&self) -> Vec<(String, RecordedRequest)> {
        self.lock().accepted.clone()
    }

    /// Forgets the answers scripted and not yet used.
    pub fn clear_script(&self) {
        self.lock().script.clear();
    }

    /// Serves `media` under `media_id`.
    pub fn add_media(&self, media_id: &str, media: FakeMedia) {
        self.lock().media.insert(media_id.into(), media);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The requests to `POST .../messages` (sends and read receipts).
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .collect()
    }

    /// Every send received (text, interactive, media, template...; not read receipts).
    pub fn sends(&self) -> Vec<RecordedRequest> {
        self.message_requests()
            .into_iter()
            .filter(|r| r.body["status"] != "read")
            .collect()
    }

    /// Waits until at least `count` sends of any type arrived (or `timeout` passed).
    pub async fn wait_for_sends(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let sends = self.sends();
            if sends.len() >= count {
                return sends;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.sends();
            }
        }
    }

    /// The text sends received (not read receipts).
    pub fn text_sends(&self) -> Vec<RecordedRequest> {
        self.message_requests()
            .into_iter()
            .filter(|r| r.body["type"] == "text")
            .collect()
    }

    /// The requests whose path starts with `prefix`.
    pub fn requests_under(&self, prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// How many bytes of `media_id`'s body the server has produced.
    pub fn media_bytes_served(&self, media_id: &str) -> u64 {
        self.counter(media_id).load(Ordering::Relaxed)
    }

    /// Waits until at least `count` text sends arrived (or `timeout` passed) and returns them.
    pub async fn wait_for_text_sends(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let sends = self.text_sends();
            if sends.len() >= count {
                return sends;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.text_sends();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counter(&self, media_id: &str) -> Arc<AtomicU64> {
        counter(&self.shared, media_id)
    }
}

/// Options for tests: millisecond backoff, short timeouts, no per-user spacing.
pub fn fast_options() -> GraphOptions {
    let retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        total_budget: Duration::from_secs(20),
        pair_rate_limit_delay: Duration::from_millis(300),
    };
    GraphOptions {
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(5),
        download_timeout: Duration::from_secs(20),
        media_retry: retry.clone(),
        retry,
        per_user_interval: Duration::ZERO,
        reply_part_interval: Duration::ZERO,
        shared_rate_limit: None,
    }
}

fn counter(shared: &Shared, media_id: &str) -> Arc<AtomicU64> {
    let mut served = shared.served.lock().unwrap_or_else(|e| e.into_inner());
    served.entry(media_id.into()).or_default().clone()
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        received_at: Instant::now(),
    };
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let reply = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(request.clone());
        route(&shared, &mut state, &method, &segments, &request)
    };
    shared.arrived.notify_waiters();
    reply.await
}

type Answer = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// Picks the answer while the state is locked; the returned future may wait (delays).
fn route(
    shared: &Arc<Shared>,
    state: &mut State,
    method: &Method,
    segments: &[&str],
    request: &RecordedRequest,
) -> Answer {
    match (method.as_str(), segments) {
        ("POST", [_version, phone, "messages"]) => {
            let read_receipt = request.body["status"] == "read";
            let for_sends = if read_receipt {
                None
            } else {
                state.send_script.pop_front()
            };
            let reply = for_sends
                .or_else(|| state.script.pop_front())
                .unwrap_or_else(|| {
                    if read_receipt {
                        return Reply::ok();
                    }
                    state.sends_seen += 1;
                    match state.sends_seen % 10 {
                        n if n >= state.flaky_tenths => Reply::ok(),
                        n if n % 3 == 0 => Reply::graph_error(500, 2),
                        n if n % 3 == 1 => Reply::graph_error(429, 130429),
                        _ => Reply::status(503),
                    }
                });
            let body = reply.body.clone().unwrap_or_else(|| {
                if read_receipt {
                    json!({ "success": true })
                } else {
                    state.sends_accepted += 1;
                    let id = format!("wamid.fake.{}", state.sends_accepted);
                    state.accepted.push((id.clone(), request.clone()));
                    let status = sent_status(phone, &id, &request.body);
                    match &state.statuses {
                        Some(statuses) => {
                            let _ = statuses.send(status);
                        }
                        None => state.held_statuses.push(status),
                    }
                    let to = request.body["to"].clone();
                    json!({
                        "messaging_product": "whatsapp",
                        "contacts": [{ "input": to, "wa_id": to }],
                        "messages": [{ "id": id }],
                    })
                }
            });
            let accepted = reply.status == 200 && body.pointer("/messages/0/id").is_some();
            let delay = if accepted && !read_receipt {
                reply.delay.max(state.hold_answers)
            } else {
                reply.delay
            };
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                json_response(reply.status, &reply.headers, &body)
            })
        }
        ("GET", ["media-download", media_id]) => {
            let media = state.media.get(*media_id).cloned();
            let authorized = request
                .header("authorization")
                .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
            let served = counter(shared, media_id);
            Box::pin(async move { media_download(media, authorized, served) })
        }
        ("GET", [_version, media_id]) => {
            let answer = match state.media.get(*media_id) {
                Some(media) => {
                    let mut meta = json!({
                        "messaging_product": "whatsapp",
                        "url": format!("{}/media-download/{media_id}?ext=1700000000&hash=ATs", shared.base_url),
                        "mime_type": media.mime_type,
                        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                        "id": media_id,
                    });
                    if !media.file_size.is_null() {
                        meta["file_size"] = media.file_size.clone();
                    }
                    json_response(200, &[], &meta)
                }
                None => unknown_object(),
            };
            Box::pin(async move { answer })
        }
        _ => Box::pin(async { json_response(404, &[], &json!({ "error": "no such route" })) }),
    }
}

/// POSTs one signed notification until the webhook answers 200.
async fn deliver_status(client: &reqwest::Client, url: &str, app_secret: &str, body: &Value) {
    let bytes = serde_json::to_vec(body).expect("a JSON body");
    let signature = wagate::whatsapp::signature::sign(app_secret.as_bytes(), &bytes);
    loop {
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &signature)
            .body(bytes.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Meta's `sent` status notification for an accepted send, echoing its callback data.
fn sent_status(phone_number_id: &str, wamid: &str, send: &Value) -> Value {
    let mut status = json!({
        "id": wamid,
        "status": "sent",
        "timestamp": "1700000000",
        "recipient_id": send["to"],
    });
    if let Some(data) = send["biz_opaque_callback_data"].as_str() {
        status["biz_opaque_callback_data"] = json!(data);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": phone_number_id },
            "statuses": [status],
        }}]}],
    })
}

fn media_download(media: Option<FakeMedia>, authorized: bool, served: Arc<AtomicU64>) -> Response {
    if !authorized {
        let error = Reply::graph_error(401, 190);
        return json_response(401, &[], &error.body.unwrap_or_default());
    }
    let Some(media) = media else {
        return unknown_object();
    };
    let body = match media.body {
        MediaBody::Bytes(bytes) => {
            served.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Body::from(bytes)
        }
        MediaBody::Endless => {
            const CHUNK: usize = 64 * 1024;
            const MAX: u64 = 1 << 30;
            let chunks = futures::stream::unfold(0u64, move |sent| {
                let served = served.clone();
                async move {
                    if sent >= MAX {
                        return None;
                    }
                    served.fetch_add(CHUNK as u64, Ordering::Relaxed);
                    let chunk = Bytes::from(vec![0u8; CHUNK]);
                    Some((Ok::<_, std::io::Error>(chunk), sent + CHUNK as u64))
                }
            });
            Body::from_stream(chunks)
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", media.mime_type)
        .body(body)
        .unwrap_or_default()
}

fn unknown_object() -> Response {
    let error = Reply::graph_error(400, 100);
    json_response(400, &[], &error.body.unwrap_or_default())
}

fn json_response(status: u16, headers: &[(String, String)], body: &Value) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}
