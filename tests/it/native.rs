//! Answering the WhatsApp way, end to end: the real server on port 0, the production
//! responder, a scripted fake model calling the sending tools, and the fake Graph API over
//! real HTTP, checked request body by request body.
//!
//! - `tools.rs`: every sending tool's exact Graph body, in the turn's order with the text;
//!   validation failures told to the model; a tap on a button back as its title.
//! - `window.rs`: the 24-hour window for agent replies (failed without a template, held behind
//!   it with one, Meta's 131047, a reply delayed past 24 hours on a moved clock).
//! - `operator.rs`: operator replies and the window; their exactly-once parts.

mod operator;
mod tools;
mod window;

use crate::e2e::live_config;
use crate::support::fake_graph::{FakeGraph, RecordedRequest};
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN: &str = "native-test-token";
pub const TEMPLATE_YAML: &str =
    "    window:\n      reopen_template: {name: hello_again, language: en_US}\n";

/// Every sending tool, for the agent file.
pub const SEND_TOOLS: &str = "  tools:
    - {type: builtin, name: reply_buttons}
    - {type: builtin, name: reply_list}
    - {type: builtin, name: react}
    - {type: builtin, name: send_image}
    - {type: builtin, name: send_document}
    - {type: builtin, name: send_location}
";

pub struct World {
    pub graph: FakeGraph,
    pub llm: FakeServer,
    pub server: TestServer,
    /// Milliseconds added to the real time on the server's clock.
    pub shift: Arc<AtomicI64>,
    pub data: tempfile::TempDir,
    _config: ConfigDir,
}

/// A live channel (console on with `TOKEN`, `extra` channel keys indented by 4) whose agent
/// has every sending tool and 8 tool rounds, answering with `llm`.
pub async fn world(
    extra: &str,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> World {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(llm).await;
    let extra = format!("    console:\n      token: \"{TOKEN}\"\n{extra}");
    let config = live_config(&graph, &llm.url, "llama3.1:8b", &extra);
    let path = config.path().join("agents/whatsapp-assistant.agent.yaml");
    let agent = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_iterations: 3", "max_iterations: 8")
        + SEND_TOOLS;
    std::fs::write(&path, agent).unwrap();
    let data = tempfile::tempdir().unwrap();
    let shift = Arc::new(AtomicI64::new(0));
    let clock_shift = Arc::clone(&shift);
    let clock: wagate::handoff::Clock = Arc::new(move || {
        let now = jiff::Timestamp::now().as_millisecond() + clock_shift.load(Ordering::SeqCst);
        jiff::Timestamp::from_millisecond(now).unwrap()
    });
    let server = TestServer::start_with_clock(
        config.load(),
        data.path(),
        None,
        fake_graph::fast_options(),
        wagate::net::HttpLimits::default(),
        Some(clock),
    )
    .await;
    World {
        graph,
        llm,
        server,
        shift,
        data,
        _config: config,
    }
}

/// A Meta-shaped webhook with one message object from `from` (its `from`, `id` and
/// `timestamp` filled in: `age_seconds` before now).
pub fn webhook(from: &str, id: &str, age_seconds: i64, message: Value) -> Vec<u8> {
    let mut message = message;
    message["from"] = json!(from);
    message["id"] = json!(id);
    message["timestamp"] = json!((chrono::Utc::now().timestamp() - age_seconds).to_string());
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [message]
        }}]}]
    }))
    .unwrap()
}

impl World {
    /// A text from `from`, `age_seconds` old by Meta's timestamp, accepted.
    pub async fn says(&self, from: &str, id: &str, text: &str, age_seconds: i64) {
        let body = webhook(
            from,
            id,
            age_seconds,
            json!({"type": "text", "text": {"body": text}}),
        );
        assert_eq!(self.server.post_signed(&body).await.status(), 200);
    }

    pub async fn api(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = self.server.url(path);
        let request = match method {
            "GET" => self.server.client.get(url),
            _ => self.server.client.post(url).json(&body),
        };
        let response = request
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The operator API id of `user`'s conversation.
    pub fn conversation(&self, user: &str) -> String {
        wagate::handoff::conversation_id(&wagate::inbox::LaneKey {
            phone_number_id: PHONE_NUMBER_ID.into(),
            user: user.into(),
        })
    }

    pub async fn messages(&self, user: &str) -> Vec<Value> {
        let (status, body) = self
            .api(
                "GET",
                &format!("/v1/conversations/{}/messages", self.conversation(user)),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// What `wagate inbox` prints for this data directory now.
    pub fn inbox_text(&self) -> String {
        let options = wagate::ops::inbox::InboxOptions {
            all: true,
            limit: 50,
            show_body: false,
            show_numbers: false,
        };
        let report = wagate::ops::inbox::report(self.data.path(), &options).expect("inbox report");
        wagate::ops::inbox::render_text(&report)
    }

    /// What `wagate inbox --json` prints (errors in full, not cut to the table's width).
    pub fn inbox_json(&self) -> String {
        let options = wagate::ops::inbox::InboxOptions {
            all: true,
            limit: 50,
            show_body: false,
            show_numbers: false,
        };
        let report = wagate::ops::inbox::report(self.data.path(), &options).expect("inbox report");
        wagate::ops::inbox::render_json(&report).expect("json")
    }
}

/// A send's body without its `biz_opaque_callback_data`, after checking that it names a
/// reply part (`wagate:<database>:<owner>:<index>`) with this `index`.
pub fn body_without_callback(send: &RecordedRequest, index: usize) -> Value {
    let mut body = send.body.clone();
    let callback = body["biz_opaque_callback_data"]
        .as_str()
        .unwrap_or_else(|| panic!("every send names its part: {body}"))
        .to_owned();
    assert!(
        callback.starts_with("wagate:") && callback.ends_with(&format!(":{index}")),
        "{callback}"
    );
    body.as_object_mut()
        .unwrap()
        .remove("biz_opaque_callback_data");
    body
}

/// Text sends' bodies, in order.
pub fn texts(graph: &FakeGraph) -> Vec<String> {
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

/// The chat requests the model received (not `/api/show`), in order.
pub fn chats(llm: &FakeServer) -> Vec<fake_llm::Recorded> {
    llm.requests()
        .into_iter()
        .filter(|r| r.uri.contains("/api/chat"))
        .collect()
}

/// The messages of the `index`-th chat request (the last with `usize::MAX`).
pub fn model_saw(llm: &FakeServer, index: usize) -> Vec<Value> {
    let chats = chats(llm);
    let index = index.min(chats.len().saturating_sub(1));
    fake_llm::messages_of(&chats[index])
}

pub const WAIT: Duration = Duration::from_secs(10);
