//! WhatsApp-native conversations, the inbound side, end to end: the real server on port 0, the
//! production responder, a fake model and a fake Graph API over real HTTP.
//!
//! - `opt_out.rs`: STOP and START keywords, Meta's `user_preferences`, across a restart.
//! - `reactions.rs`: a reaction recorded per message; told to the agent when it asks.
//! - `media_memory.rs`: an image still seen by the model turns later, downloaded again.

mod media_memory;
mod opt_out;
mod reactions;

use crate::support::fake_llm;
use crate::support::*;
use serde_json::Value;

pub const TOKEN: &str = "operator-test-token";

/// A live app with the console on (`TOKEN`), the agent on `model`, edited by `agent`.
pub async fn world(
    model: &str,
    agent: impl FnOnce(Agent) -> Agent + 'static,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> TestApp {
    TestApp::builder()
        .console(TOKEN)
        .model(model)
        .agent(agent)
        .llm(llm)
        .start()
        .await
}

/// A body of one message object `message` from `from` (named Ana).
pub fn body_of(from: &str, message: Value) -> Vec<u8> {
    meta::one_message(from, message)
}

/// A text message stamped now.
pub fn text(id: &str, from: &str, body: &str) -> Vec<u8> {
    meta::text(id, from, body, 0)
}
