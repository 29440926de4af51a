//! Guardrails inside a turn: what the model, the result and memory see.

use super::harness::{agent, answer, echo, ollama_model, roles_and_contents, Harness};
use crate::support::fake_llm::{ollama_says, FakeServer};
use crate::support::Agent;
use bytes::Bytes;
use serde_json::{json, Value};
use wagate::agent::input::ResolvedPart;
use wagate::llm::ImageData;

const EMAIL: &str = "ana.souza@example.com";
const CARD: &str = "4111 1111 1111 1111";

fn spec(model_url: &str, model: &str, guardrails: Value) -> Agent {
    agent(ollama_model(model_url, model))
        .memory(20, Some(3600))
        .set("guardrails", guardrails)
}

fn memory_text(entries: &[wagate::memory::MemoryEntry]) -> String {
    entries
        .iter()
        .map(|e| e.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_email_and_a_card_number_from_the_user_reach_neither_the_model_nor_memory() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec(
        &model.url,
        "m",
        json!({"input": [{"type": "pii_detection", "action": "redact"}]}),
    ));

    let text = format!("mail me at {EMAIL}, my card is {CARD}, order 12345");
    let result = harness.say("wa_1", 1, &text).await;

    let sent = String::from_utf8_lossy(&model.requests()[0].body).into_owned();
    assert!(!sent.contains(EMAIL), "{sent}");
    assert!(!sent.contains(CARD), "{sent}");
    assert!(sent.contains("[REDACTED_EMAIL]"), "{sent}");
    assert!(sent.contains("[REDACTED_CARD]"), "{sent}");
    assert!(sent.contains("order 12345"), "{sent}");
    let remembered = memory_text(&harness.remembered("wa_1").await);
    assert!(!remembered.contains(EMAIL), "{remembered}");
    assert!(!remembered.contains(CARD), "{remembered}");
    assert!(remembered.contains("[REDACTED_EMAIL]"), "{remembered}");
    assert!(answer(&result).contains("[REDACTED_CARD]"));
}

#[tokio::test]
async fn personal_data_in_the_models_answer_is_redacted_in_the_reply_and_in_memory() {
    let model = FakeServer::start(|_, _| ollama_says("Write to boss@corp.example today.")).await;
    let harness = Harness::start(spec(
        &model.url,
        "m",
        json!({"output": [{"type": "pii_detection"}]}),
    ));

    let result = harness.say("wa_1", 1, "who do I write to?").await;

    assert_eq!(answer(&result), "Write to [REDACTED_EMAIL] today.");
    let remembered = memory_text(&harness.remembered("wa_1").await);
    assert!(!remembered.contains("boss@corp.example"), "{remembered}");
    assert!(remembered.contains("Write to [REDACTED_EMAIL] today."));
}

#[tokio::test]
async fn an_input_longer_than_max_length_is_cut_before_the_model_sees_it() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec(
        &model.url,
        "m",
        json!({"input": [{"type": "max_length", "max_chars": 10}]}),
    ));

    let result = harness.say("wa_1", 1, "abcdefghijKLMNOPQRST").await;

    let user = roles_and_contents(&model.requests()[0])
        .pop()
        .map(|(_, content)| content);
    assert_eq!(user.as_deref(), Some("abcdefghij"));
    assert_eq!(answer(&result), "echo: abcdefghij");
    assert!(!memory_text(&harness.remembered("wa_1").await).contains("KLM"));
}

#[tokio::test]
async fn an_image_caption_is_redacted_and_memory_keeps_a_placeholder_not_the_image() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec(
        &model.url,
        "llava:7b",
        json!({"input": [{"type": "pii_detection"}]}),
    ));
    let image = ImageData {
        mime_type: "image/jpeg".into(),
        data: Bytes::from_static(b"\xff\xd8\xff\xe0 not really a jpeg"),
    };
    let parts = vec![ResolvedPart::Image {
        image,
        caption: Some(format!("receipt, questions to {EMAIL}")),
        media_id: None,
    }];

    harness.turn("wa_1", 1, parts).await;

    // (An image counts 2,048 tokens, so the model's window is asked first: /api/show.)
    let sent = model
        .requests()
        .into_iter()
        .find(|r| r.uri == "/api/chat")
        .expect("a chat request")
        .json();
    let user = &sent["messages"][0];
    assert_eq!(user["content"], "receipt, questions to [REDACTED_EMAIL]");
    assert_eq!(user["images"].as_array().map(Vec::len), Some(1));
    let remembered = harness.remembered("wa_1").await;
    assert_eq!(
        remembered[0].content,
        "[Image] receipt, questions to [REDACTED_EMAIL]"
    );
}
