//! Turns that cannot be answered: every model failing, and the whole-turn timeout.

use super::harness::{agent, failure, ollama_model, Harness};
use crate::support::fake_llm::{FakeServer, Reply};
use serde_json::json;
use std::time::{Duration, Instant};
use wagate::memory::MemoryRole;

#[tokio::test]
async fn when_every_model_fails_the_turn_fails_naming_each_model_and_keeps_the_users_words() {
    let primary = FakeServer::start(|_, _| Reply::status(500, json!({"error": "boom"}))).await;
    let fallback =
        FakeServer::start(|_, _| Reply::status(503, json!({"error": "overloaded"}))).await;
    let harness = Harness::start(
        agent(ollama_model(&primary.url, "big"))
            .fallback(ollama_model(&fallback.url, "small"))
            .default_memory(),
    );

    let result = harness.say("wa_1", 1, "are you there?").await;

    let error = failure(&result);
    assert!(
        error.contains("ollama/big") && error.contains("boom"),
        "{error}"
    );
    assert!(
        error.contains("ollama/small") && error.contains("overloaded"),
        "{error}"
    );
    assert_eq!(
        result.models_tried,
        vec!["ollama/big".to_owned(), "ollama/small".to_owned()]
    );
    let remembered = harness.remembered("wa_1").await;
    assert_eq!(remembered.len(), 1);
    assert_eq!(remembered[0].role, MemoryRole::User);
    assert_eq!(remembered[0].content, "are you there?");
}

#[tokio::test]
async fn a_turn_slower_than_its_timeout_fails_soon_after_the_timeout() {
    let model = FakeServer::start(|_, _| {
        Reply::json(json!({"message": {"role": "assistant", "content": "late"}, "done": true}))
            .after(Duration::from_secs(20))
    })
    .await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "slow"))
            .set("orchestration", json!({"timeout_seconds": 1}))
            .default_memory(),
    );

    let started = Instant::now();
    let result = harness.say("wa_1", 1, "quick question").await;
    let took = started.elapsed();

    let error = failure(&result);
    assert!(error.contains("timeout"), "{error}");
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let remembered = harness.remembered("wa_1").await;
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    assert_eq!(remembered[0].role, MemoryRole::User);
}
