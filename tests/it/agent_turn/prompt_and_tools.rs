//! The system prompt, the tool loop and model fallback inside one turn.

use super::harness::{agent, answer, echo, ollama_model, roles_and_contents, Harness};
use crate::support::fake_llm::{ollama_calls, ollama_says, FakeServer, Reply};
use serde_json::{json, Value};
use wagate::agent::runtime::TurnAnswer;

#[tokio::test]
async fn the_system_prompt_carries_the_contact_the_phone_the_agent_and_the_time() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "llama3.1:8b")).system_prompt(
            "Talk to {{ contact_name }} on {{ phone }} as {{ agent_name }}. Now: {{ now }}",
        ),
    );
    let before = chrono::Utc::now();

    let result = harness.say("wa_5511999999999", 1, "hi").await;

    assert_eq!(answer(&result), "echo: hi");
    let messages = roles_and_contents(&model.requests()[0]);
    let (role, system) = &messages[0];
    assert_eq!(role, "system");
    let prefix = "Talk to Ana on 5511999999999 as helper. Now: ";
    assert!(system.starts_with(prefix), "{system}");
    let now = chrono::DateTime::parse_from_rfc3339(&system[prefix.len()..])
        .unwrap_or_else(|e| panic!("`now` is not RFC 3339 ({e}): {system}"));
    let lag = now.signed_duration_since(before).num_seconds().abs();
    assert!(lag <= 5, "now is {now}, the turn started at {before}");
    assert_eq!(messages.last().map(|m| m.1.as_str()), Some("hi"));
}

/// An HTTP tool looking orders up at `tool_url`.
fn lookup_tool(tool_url: &str) -> Value {
    json!({
        "type": "http",
        "name": "order_status",
        "description": "Status of an order",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        "http": {"method": "GET", "url": format!("{tool_url}/orders/{{{{ order }}}}")}
    })
}

#[tokio::test]
async fn a_tool_call_inside_a_turn_reaches_the_http_tool_and_its_result_reaches_the_model() {
    let tool = FakeServer::start(|_, _| Reply::json(json!({"status": "shipped"}))).await;
    let model = FakeServer::start(|request, index| {
        if index == 0 {
            return ollama_calls("order_status", json!({"order": "A-1001"}));
        }
        let tool_result = roles_and_contents(request)
            .into_iter()
            .find(|(role, _)| role == "tool")
            .map(|(_, content)| content)
            .unwrap_or_default();
        ollama_says(&format!("Your order: {tool_result}"))
    })
    .await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "llama3.1:8b"))
            .max_iterations(3)
            .tool(lookup_tool(&tool.url)),
    );

    let result = harness.say("wa_1", 1, "where is my order A-1001?").await;

    assert_eq!(answer(&result), r#"Your order: {"status":"shipped"}"#);
    assert_eq!(tool.requests()[0].uri, "/orders/A-1001");
    assert_eq!(result.tool_calls, vec!["order_status".to_owned()]);
    assert_eq!(result.model_calls, 2);
    assert_eq!(model.count(), 2);
    // Tokens of both calls are summed (the fake reports 11 + 7 per call).
    assert_eq!(result.usage.prompt_tokens, 22);
    assert_eq!(result.usage.completion_tokens, 14);
}

#[tokio::test]
async fn a_500_from_the_primary_model_hands_the_turn_to_the_fallback() {
    let primary =
        FakeServer::start(|_, _| Reply::status(500, json!({"error": "out of memory"}))).await;
    let fallback = FakeServer::start(|_, _| ollama_says("from the fallback")).await;
    let harness = Harness::start(
        agent(ollama_model(&primary.url, "big")).fallback(ollama_model(&fallback.url, "small")),
    );

    let result = harness.say("wa_1", 1, "hello").await;

    assert_eq!(answer(&result), "from the fallback");
    assert_eq!(primary.count(), 1);
    // Both count as tried: the failing primary and the fallback that answered.
    assert_eq!(
        result.models_tried,
        vec!["ollama/big".to_owned(), "ollama/small".to_owned()]
    );
}

#[tokio::test]
async fn a_turn_without_parts_asks_no_model_and_stores_nothing() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(agent(ollama_model(&model.url, "m")).default_memory());

    let result = harness.turn("wa_1", 1, Vec::new()).await;

    assert_eq!(result.outcome, TurnAnswer::Nothing);
    assert_eq!(model.count(), 0);
    assert!(harness.remembered("wa_1").await.is_empty());
}

#[tokio::test]
async fn an_unknown_agent_name_fails_the_turn_instead_of_panicking() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(agent(ollama_model(&model.url, "m")));
    let request = wagate::agent::runtime::TurnRequest {
        memory_key: "wa_1".into(),
        turn_id: 1,
        contact_name: None,
        phone: "1".into(),
        parts: vec!["hi".to_owned().into()],
        media: None,
    };

    let result = harness.runtime.run("nobody", request).await;

    assert!(
        matches!(&result.outcome, TurnAnswer::Failed { error } if error.contains("nobody")),
        "{:?}",
        result.outcome
    );
    assert_eq!(model.count(), 0);
}
