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

use crate::support::fake_llm;
use crate::support::*;

pub const TOKEN: &str = "operator-test-token";

/// A live app with the console on (`TOKEN`) and `channel` applied.
pub async fn world(
    channel: impl FnOnce(Channel) -> Channel + 'static,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> TestApp {
    world_with_agent(channel, |a| a, llm).await
}

/// As [`world`], with the agent edited by `agent`.
pub async fn world_with_agent(
    channel: impl FnOnce(Channel) -> Channel + 'static,
    agent: impl FnOnce(Agent) -> Agent + 'static,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> TestApp {
    TestApp::builder()
        .console(TOKEN)
        .channel(channel)
        .agent(agent)
        .llm(llm)
        .start()
        .await
}

/// One text message from `from`, stamped `age_seconds` ago by "Meta".
pub fn message(id: &str, from: &str, text: &str, age_seconds: i64) -> Vec<u8> {
    meta::text(id, from, text, age_seconds)
}
