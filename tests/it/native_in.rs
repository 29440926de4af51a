//! WhatsApp-native conversations, the inbound side, end to end: the real server on port 0, the
//! production responder, a fake model and a fake Graph API over real HTTP.
//!
//! - `opt_out.rs`: STOP and START keywords, Meta's `user_preferences`, across a restart.
//! - `reactions.rs`: a reaction recorded per message; told to the agent when it asks.
//! - `media_memory.rs`: an image still seen by the model turns later, downloaded again.

mod media_memory;
mod opt_out;
mod reactions;

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
    pub config: ConfigDir,
    pub data: tempfile::TempDir,
}

/// A live channel with the console on (`TOKEN`), `extra` channel keys (indented by 4), the
/// agent on `model` with `agent_extra` under its `spec` (indented by 2).
pub async fn world(
    model: &str,
    extra: &str,
    agent_extra: &str,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> World {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(llm).await;
    let extra = format!("    console:\n      token: \"{TOKEN}\"\n{extra}");
    let config = live_config(&graph, &llm.url, model, &extra);
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
        config,
        data,
    }
}

/// A body of one message object `message` from `from` (named Ana).
pub fn body_of(from: &str, message: Value) -> Vec<u8> {
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

/// A text message stamped now.
pub fn text(id: &str, from: &str, body: &str) -> Vec<u8> {
    body_of(
        from,
        json!({"from": from, "id": id, "timestamp": chrono::Utc::now().timestamp().to_string(),
               "type": "text", "text": {"body": body}}),
    )
}

impl World {
    pub async fn post(&self, body: &[u8]) {
        let response = self.server.post_signed(body).await;
        assert_eq!(response.status(), 200);
    }

    pub async fn customer_says(&self, id: &str, from: &str, body: &str) {
        self.post(&text(id, from, body)).await;
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

    /// `user`'s line of `GET /v1/conversations`, waiting until it is listed.
    pub async fn listed(&self, user: &str) -> Value {
        for _ in 0..200 {
            let (status, body) = self.api_get("/v1/conversations").await;
            assert_eq!(status, 200, "{body}");
            if let Some(c) = body["conversations"]
                .as_array()
                .and_then(|list| list.iter().find(|c| c["user"] == user))
            {
                return c.clone();
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

    /// The chat requests the model received (not `/api/show`), in order.
    pub fn chats(&self) -> Vec<fake_llm::Recorded> {
        self.llm
            .requests()
            .into_iter()
            .filter(|r| r.uri == "/api/chat")
            .collect()
    }
}
