//! Human handoff and the operator API, end to end: the real server on port 0, the production
//! responder, a fake model and a fake Graph API over real HTTP, the operator API called as an
//! operator's script would.
//!
//! - `auth.rs`: the API is off without a token, bearer and cookie authentication, login,
//!   cross-site refusal.
//! - `api.rs`: taking over and handing back, what the conversation shows, operator replies.
//! - `triggers.rs`: the keyword, the agent's tool, the release timer, `notify_url`, events.

mod api;
mod auth;
mod triggers;

use crate::e2e::live_config;
use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const TOKEN: &str = "operator-test-token";

pub struct World {
    pub graph: FakeGraph,
    pub llm: FakeServer,
    pub server: TestServer,
    _config: ConfigDir,
    _data: tempfile::TempDir,
}

/// A live channel with the console on (`TOKEN`) and `extra` channel keys (indented by 4).
pub async fn world(
    extra: &str,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> World {
    world_with_agent(extra, "", llm).await
}

/// As [`world`], with `agent_extra` appended under the agent's `spec` (indented by 2).
pub async fn world_with_agent(
    extra: &str,
    agent_extra: &str,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> World {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(llm).await;
    let extra = format!("    console:\n      token: \"{TOKEN}\"\n{extra}");
    let config = live_config(&graph, &llm.url, "llama3.1:8b", &extra);
    if !agent_extra.is_empty() {
        let path = config.path().join("agents/whatsapp-assistant.agent.yaml");
        let agent = std::fs::read_to_string(&path).unwrap() + agent_extra;
        std::fs::write(&path, agent).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    World {
        graph,
        llm,
        server,
        _config: config,
        _data: data,
    }
}

/// One text message from `from`, stamped `age_seconds` ago by "Meta".
pub fn message(id: &str, from: &str, text: &str, age_seconds: i64) -> Vec<u8> {
    let timestamp = (chrono::Utc::now().timestamp() - age_seconds).to_string();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": timestamp, "type": "text",
                          "text": {"body": text}}]
        }}]}]
    }))
    .unwrap()
}

impl World {
    /// A customer message, signed, accepted.
    pub async fn customer_says(&self, id: &str, from: &str, text: &str) {
        let response = self.server.post_signed(&message(id, from, text, 0)).await;
        assert_eq!(response.status(), 200);
    }

    pub fn bearer(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("authorization", format!("Bearer {TOKEN}"))
    }

    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .bearer(self.server.client.get(self.server.url(path)))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .bearer(self.server.client.post(self.server.url(path)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
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

    /// The id of `user`'s conversation, waiting until it is listed.
    pub async fn conversation_of(&self, user: &str) -> String {
        for _ in 0..200 {
            let list = self.conversations("").await;
            if let Some(c) = list.iter().find(|c| c["user"] == user) {
                return c["id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("conversation of {user} never listed");
    }

    pub async fn state_of(&self, id: &str) -> String {
        let list = self.conversations("").await;
        let c = list.iter().find(|c| c["id"] == id).expect("listed");
        c["state"].as_str().unwrap().to_owned()
    }

    pub async fn messages(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .api_get(&format!("/v1/conversations/{id}/messages"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Texts sent to the customer so far.
    pub fn sent_texts(&self) -> Vec<String> {
        self.graph
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

    /// Read receipts sent so far.
    pub fn receipts(&self) -> usize {
        self.graph
            .message_requests()
            .iter()
            .filter(|r| r.body["status"] == "read")
            .count()
    }
}
