//! Each provider's wire format, checked on the JSON a fake server really receives.

use crate::support::fake_llm;

use bytes::Bytes;
use fake_llm::{ollama_calls, ollama_says, openai_says, FakeServer, Reply};
use serde_json::json;
use std::time::{Duration, Instant};
use wagate::config::ModelSpec;
use wagate::llm::{
    ChatMessage, ChatRequest, ImageData, Router, RouterError, ToolArguments, ToolDefinition,
};

fn spec(yaml: &str) -> ModelSpec {
    serde_yaml::from_str(yaml).expect("model spec yaml")
}

fn router(yaml: &str) -> Router {
    Router::new(&spec(yaml), reqwest::Client::new())
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "weather".into(),
        description: "Weather by city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

fn photo_request() -> ChatRequest {
    let mut user = ChatMessage::user("What is in this picture?");
    user.images.push(ImageData {
        mime_type: "image/jpeg".into(),
        data: Bytes::from_static(b"\xff\xd8\xff\xe0fake-jpeg"),
    });
    ChatRequest {
        messages: vec![ChatMessage::system("Be brief."), user],
        tools: vec![weather_tool()],
        ..Default::default()
    }
}

#[tokio::test]
async fn an_ollama_request_has_stream_false_options_bare_base64_images_and_tools() {
    let fake = FakeServer::start(|_, _| ollama_says("A cat on a sofa.")).await;
    let router = router(&format!(
        "primary: {{provider: ollama, model: 'llava:7b', endpoint: '{}/',
                   parameters: {{temperature: 0.4, max_tokens: 1024, top_k: 20}}}}",
        fake.url
    ));

    let response = router.chat(&photo_request()).await.expect("answer");

    assert_eq!(response.message.content, "A cat on a sofa.");
    assert_eq!(response.model, "ollama/llava:7b");
    assert_eq!(
        (
            response.usage.prompt_tokens,
            response.usage.completion_tokens
        ),
        (11, 7)
    );
    // An image counts 2,048 tokens: the window is asked first (this fake's /api/show says
    // nothing, so 8192 is assumed), and Ollama is told it as `num_ctx`.
    let uris: Vec<String> = fake.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/api/show", "/api/chat"]);
    let sent = &fake.requests()[1];
    let body = sent.json();
    assert_eq!(body["model"], "llava:7b");
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["options"],
        json!({"temperature": 0.4, "num_predict": 1024, "top_k": 20, "num_ctx": 8192})
    );
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(
        body["messages"][1]["images"],
        json!(["/9j/4GZha2UtanBlZw=="])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}])
    );
}

#[tokio::test]
async fn ollama_tool_calls_are_read_even_though_done_reason_says_stop() {
    let fake = FakeServer::start(|_, _| ollama_calls("weather", json!({"city": "Lima"}))).await;
    let router = router(&format!(
        "primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{}'}}",
        fake.url
    ));
    let request = ChatRequest {
        messages: vec![ChatMessage::user("Weather in Lima?")],
        tools: vec![weather_tool()],
        ..Default::default()
    };

    let response = router.chat(&request).await.expect("answer");

    let calls = &response.message.tool_calls;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "weather");
    assert_eq!(
        calls[0].arguments,
        ToolArguments::Valid(json!({"city": "Lima"}))
    );
    assert!(
        !calls[0].id.is_empty(),
        "a generated id pairs the result with the call"
    );
    assert!(
        fake.requests()[0].json().get("options").is_none(),
        "no parameters, no options"
    );
}

#[tokio::test]
async fn an_ollama_error_body_gives_the_status_and_the_message() {
    let fake = FakeServer::start(|_, _| {
        Reply::status(
            404,
            json!({"error": "model \"llama9:8b\" not found, try pulling it first"}),
        )
    })
    .await;
    let router = router(&format!(
        "primary: {{provider: ollama, model: 'llama9:8b', endpoint: '{}'}}",
        fake.url
    ));

    let err = router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            tools: vec![],
            ..Default::default()
        })
        .await
        .expect_err("unknown model");

    assert_eq!(
        err.to_string(),
        format!(
            "no model answered: ollama/llama9:8b at {}: HTTP 404: model \"llama9:8b\" not found, \
             try pulling it first (is the model pulled? `ollama pull llama9:8b`)",
            fake.url
        )
    );
}

#[tokio::test]
async fn an_openai_request_has_the_bearer_key_data_url_images_and_parameters() {
    let fake = FakeServer::start(|_, _| openai_says("A cat.")).await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'gpt-4o-mini', endpoint: '{}/v1', api_key: 'sk-test-123',
                   parameters: {{temperature: 0.2, max_tokens: 256, seed: 7}}}}",
        fake.url
    ));

    let response = router.chat(&photo_request()).await.expect("answer");

    assert_eq!(response.message.content, "A cat.");
    assert_eq!(response.model, "openai/gpt-4o-mini");
    assert_eq!(
        (
            response.usage.prompt_tokens,
            response.usage.completion_tokens
        ),
        (13, 5)
    );
    // (An image counts 2,048 tokens: the window is asked first, /v1/models then /props.)
    let sent = fake
        .requests()
        .into_iter()
        .find(|r| r.uri == "/v1/chat/completions")
        .expect("a chat request");
    assert_eq!(
        sent.header("authorization").as_deref(),
        Some("Bearer sk-test-123")
    );
    let body = sent.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        (body["max_tokens"].clone(), body["temperature"].clone()),
        (json!(256), json!(0.2))
    );
    assert_eq!(body["seed"], 7);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4GZha2UtanBlZw=="}}
        ])
    );
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "weather");
}

#[tokio::test]
async fn an_openai_request_without_a_key_sends_no_authorization_and_plain_string_content() {
    let fake = FakeServer::start(|_, _| openai_says("hello")).await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'local', endpoint: '{}/v1'}}",
        fake.url
    ));

    router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            tools: vec![],
            ..Default::default()
        })
        .await
        .expect("answer");

    let sent = &fake.requests()[0];
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json()["messages"][0],
        json!({"role": "user", "content": "hi"})
    );
    assert!(
        sent.json().get("tools").is_none(),
        "no tools, no `tools` key"
    );
}

#[tokio::test]
async fn a_rejected_api_key_is_never_shown_in_the_error() {
    let fake = FakeServer::start(|_, _| {
        Reply::status(401, json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}))
    })
    .await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'gpt-4o', endpoint: '{}/v1', api_key: 'sk-very-secret'}}",
        fake.url
    ));

    let err = router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            tools: vec![],
            ..Default::default()
        })
        .await
        .expect_err("401");

    let text = format!("{err} {err:?}");
    assert!(
        text.contains("HTTP 401: Incorrect API key provided"),
        "{text}"
    );
    assert!(!text.contains("sk-very-secret"), "{text}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_then_answered() {
    let fake = FakeServer::start(|_, index| {
        if index == 0 {
            Reply::status(429, json!({"error": {"message": "Rate limit reached"}}))
                .with_header("retry-after", "1")
        } else {
            openai_says("after the wait")
        }
    })
    .await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'gpt-4o', endpoint: '{}/v1', timeout_seconds: 10}}",
        fake.url
    ));
    let started = Instant::now();

    let response = router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            tools: vec![],
            ..Default::default()
        })
        .await
        .expect("answer after a retry");

    assert_eq!(response.message.content, "after the wait");
    assert_eq!(fake.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn a_huge_retry_after_from_a_model_server_is_an_error_not_a_panic() {
    // `Retry-After: 1e20` overflowed `Duration` and panicked the turn's task.
    let fake = FakeServer::start(|_, _| {
        Reply::status(429, json!({"error": {"message": "Rate limit reached"}}))
            .with_header("retry-after", "1e20")
    })
    .await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'gpt-4o', endpoint: '{}/v1', timeout_seconds: 10}}",
        fake.url
    ));

    let err = router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            ..Default::default()
        })
        .await
        .expect_err("a wait of 1e20 s is not honoured");

    assert_eq!(
        fake.count(),
        1,
        "not retried: the wait is far past the call's budget"
    );
    assert!(err.to_string().contains("HTTP 429"), "{err}");
}

#[tokio::test]
async fn a_429_without_retry_after_is_a_quota_error_and_not_retried() {
    let fake = FakeServer::start(|_, _| {
        Reply::status(
            429,
            json!({"error": {"message": "You exceeded your current quota"}}),
        )
    })
    .await;
    let router = router(&format!(
        "primary: {{provider: openai, model: 'gpt-4o', endpoint: '{}/v1'}}",
        fake.url
    ));

    let err = router
        .chat(&ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            tools: vec![],
            ..Default::default()
        })
        .await
        .expect_err("quota");

    assert_eq!(fake.count(), 1);
    assert!(matches!(&err, RouterError::NoCandidate { .. }));
    assert!(
        err.to_string()
            .contains("HTTP 429: You exceeded your current quota"),
        "{err}"
    );
}
