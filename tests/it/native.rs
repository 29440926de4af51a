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

use crate::support::fake_graph::{FakeGraph, RecordedRequest};
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const TOKEN: &str = "native-test-token";

/// The channel key that reopens a closed window with the `hello_again` template.
pub fn with_template(channel: Channel) -> Channel {
    channel.reopen_template("hello_again", "en_US")
}

/// Every sending tool, for the agent file.
pub const SEND_TOOLS: [&str; 6] = [
    "reply_buttons",
    "reply_list",
    "react",
    "send_image",
    "send_document",
    "send_location",
];

/// A live app (console on with `TOKEN`, `channel` applied) whose agent has every sending tool
/// and 8 tool rounds, answering with `llm`.
pub async fn world(
    channel: impl FnOnce(Channel) -> Channel + 'static,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> TestApp {
    TestApp::builder()
        .console(TOKEN)
        .channel(channel)
        .agent(|a| a.max_iterations(8).builtins(&SEND_TOOLS))
        .llm(llm)
        .start()
        .await
}

/// A Meta-shaped webhook with one message object from `from` (its `from`, `id` and
/// `timestamp` filled in: `age_seconds` before now).
pub fn webhook(from: &str, id: &str, age_seconds: i64, message: Value) -> Vec<u8> {
    meta::stamped(from, id, age_seconds, message)
}

/// Operator-side helpers of these tests.
impl TestApp {
    /// A text from `from`, `age_seconds` old by Meta's timestamp, accepted.
    pub async fn says(&self, from: &str, id: &str, text: &str, age_seconds: i64) {
        self.post(&meta::text(id, from, text, age_seconds)).await;
    }

    pub async fn api(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = self.server.url(path);
        let request = match method {
            "GET" => self.server.client.get(url),
            _ => self.server.client.post(url).json(&body),
        };
        let response = self.bearer(request).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The messages of `user`'s conversation.
    pub async fn messages_with(&self, user: &str) -> Vec<Value> {
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
    sent_texts(graph)
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
