//! The model router against fake model servers: fallback, image routing, circuit breaker.

use crate::support::fake_llm;

use bytes::Bytes;
use fake_llm::{ollama_says, openai_says, FakeServer, Reply};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wagate::config::ModelSpec;
use wagate::llm::{
    BreakerPolicy, ChatMessage, ChatRequest, ImageData, Router, RouterError, ToolDefinition,
};

/// Parses a model spec written one top-level key per line (leading spaces are dropped).
fn spec(yaml: &str) -> ModelSpec {
    let yaml: Vec<&str> = yaml.lines().map(str::trim).collect();
    serde_yaml::from_str(&yaml.join("\n")).expect("model spec yaml")
}

fn text_request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("hello")],
        tools: vec![],
        ..Default::default()
    }
}

fn image_request() -> ChatRequest {
    let mut user = ChatMessage::user("what is this?");
    user.images.push(ImageData {
        mime_type: "image/png".into(),
        data: Bytes::from_static(b"\x89PNG fake"),
    });
    ChatRequest {
        messages: vec![user],
        tools: vec![],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_500_from_the_primary_hands_the_request_to_the_fallback() {
    let primary =
        FakeServer::start(|_, _| Reply::status(500, json!({"error": "out of memory"}))).await;
    let fallback = FakeServer::start(|_, _| openai_says("from the fallback")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}
             fallback: {{provider: openai, model: 'qwen2.5', endpoint: '{}/v1'}}",
            primary.url, fallback.url
        )),
        reqwest::Client::new(),
    );

    let outcome = router
        .chat_with_attempts(&text_request())
        .await
        .expect("answer");

    assert_eq!(outcome.response.message.content, "from the fallback");
    assert_eq!(outcome.response.model, "openai/qwen2.5");
    assert_eq!(
        outcome.attempts,
        vec![(
            "ollama/llama3.1:8b".to_owned(),
            format!("at {}: HTTP 500: out of memory", primary.url)
        )]
    );
    assert_eq!((primary.count(), fallback.count()), (1, 1));
}

#[tokio::test]
async fn a_primary_slower_than_its_timeout_hands_the_request_to_the_fallback() {
    let primary =
        FakeServer::start(|_, _| ollama_says("too late").after(Duration::from_secs(4))).await;
    let fallback = FakeServer::start(|_, _| ollama_says("in time")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llava:7b', endpoint: '{}', timeout_seconds: 1}}
             fallback: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}",
            primary.url, fallback.url
        )),
        reqwest::Client::new(),
    );
    let started = Instant::now();

    let outcome = router
        .chat_with_attempts(&text_request())
        .await
        .expect("answer");

    assert_eq!(outcome.response.message.content, "in time");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let why = &outcome.attempts[0].1;
    assert!(why.contains("timeout after 1s"), "{why}");
}

#[tokio::test]
async fn every_candidate_failing_gives_an_error_naming_each_model_and_its_error() {
    let primary = FakeServer::start(|_, _| Reply::status(503, json!({"error": "loading"}))).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llava:7b', endpoint: '{}'}}
             fallback: {{provider: ollama, model: 'llama3.1:8b', endpoint: 'http://127.0.0.1:1'}}",
            primary.url
        )),
        reqwest::Client::new(),
    );

    let err = router
        .chat(&text_request())
        .await
        .expect_err("nobody answers");

    let text = err.to_string();
    let expected = format!(
        "no model answered: ollama/llava:7b at {}: HTTP 503: loading; \
         ollama/llama3.1:8b at http://127.0.0.1:1: cannot connect",
        primary.url
    );
    assert!(text.starts_with(&expected), "{text}");
    assert_eq!(err.attempts().len(), 2);
}

#[tokio::test]
async fn an_image_skips_a_primary_without_vision() {
    let primary = FakeServer::start(|_, _| ollama_says("I cannot see")).await;
    let fallback = FakeServer::start(|_, _| ollama_says("a red bicycle")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}
             fallback: {{provider: ollama, model: 'my-model', endpoint: '{}', capabilities: [vision, tools]}}
             routing: {{strategy: capability_match}}",
            primary.url, fallback.url
        )),
        reqwest::Client::new(),
    );

    let image = router.chat(&image_request()).await.expect("answer");
    let text = router.chat(&text_request()).await.expect("answer");

    assert_eq!(image.message.content, "a red bicycle");
    assert_eq!(
        text.message.content, "I cannot see",
        "text still goes to the primary"
    );
    // (The image request asks the fallback its window first: /api/show.)
    let chats = |server: &FakeServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.uri == "/api/chat")
            .count()
    };
    assert_eq!((chats(&primary), chats(&fallback)), (1, 1));
}

#[tokio::test]
async fn an_image_with_no_vision_model_gives_an_error_that_says_how_to_fix_it() {
    let primary = FakeServer::start(|_, _| ollama_says("unused")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}",
            primary.url
        )),
        reqwest::Client::new(),
    );

    let err = router.chat(&image_request()).await.expect_err("no vision");

    assert!(matches!(err, RouterError::NoVisionCandidate { .. }));
    let text = err.to_string();
    assert!(text.contains("ollama/llama3.1:8b"), "{text}");
    assert!(text.contains("capabilities: [vision]"), "{text}");
    assert_eq!(primary.count(), 0);
}

#[tokio::test]
async fn registration_order_sends_an_image_to_the_primary_whatever_its_capabilities() {
    let primary = FakeServer::start(|_, _| ollama_says("primary")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}
             routing: {{strategy: registration_order}}",
            primary.url
        )),
        reqwest::Client::new(),
    );

    let response = router.chat(&image_request()).await.expect("answer");

    assert_eq!(response.message.content, "primary");
}

#[tokio::test]
async fn a_model_configured_without_tools_is_asked_without_tools() {
    let primary = FakeServer::start(|_, _| ollama_says("plain answer")).await;
    let router = Router::new(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'tiny', endpoint: '{}', capabilities: []}}",
            primary.url
        )),
        reqwest::Client::new(),
    );
    let request = ChatRequest {
        messages: vec![ChatMessage::user("time?")],
        tools: vec![ToolDefinition {
            name: "current_time".into(),
            description: "clock".into(),
            parameters: json!({"type": "object"}),
        }],
        ..Default::default()
    };

    router.chat(&request).await.expect("answer");

    assert!(primary.requests()[0].json().get("tools").is_none());
}

#[tokio::test]
async fn the_breaker_stops_calling_a_broken_primary_and_tries_it_again_after_the_cool_down() {
    let healthy = Arc::new(AtomicBool::new(false));
    let primary = {
        let healthy = healthy.clone();
        FakeServer::start(move |_, _| {
            if healthy.load(Ordering::SeqCst) {
                ollama_says("primary is back")
            } else {
                Reply::status(500, json!({"error": "broken"}))
            }
        })
        .await
    };
    let fallback = FakeServer::start(|_, _| ollama_says("fallback")).await;
    let router = Router::with_breaker_policy(
        &spec(&format!(
            "primary: {{provider: ollama, model: 'a', endpoint: '{}'}}
             fallback: {{provider: ollama, model: 'b', endpoint: '{}'}}",
            primary.url, fallback.url
        )),
        reqwest::Client::new(),
        BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_millis(400),
        },
    );

    for _ in 0..6 {
        let response = router
            .chat(&text_request())
            .await
            .expect("fallback answers");
        assert_eq!(response.message.content, "fallback");
    }
    assert_eq!(
        primary.count(),
        3,
        "open after 3 failures: the primary is skipped"
    );
    let skipped = router
        .chat_with_attempts(&text_request())
        .await
        .expect("answer");
    assert!(
        skipped.attempts[0].1.contains("circuit open"),
        "{:?}",
        skipped.attempts
    );

    tokio::time::sleep(Duration::from_millis(450)).await;
    healthy.store(true, Ordering::SeqCst);
    let trial = router.chat(&text_request()).await.expect("answer");
    let after = router.chat(&text_request()).await.expect("answer");

    assert_eq!(trial.message.content, "primary is back");
    assert_eq!(after.message.content, "primary is back");
    assert_eq!(primary.count(), 5);
}
