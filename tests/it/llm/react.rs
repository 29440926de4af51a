//! The ReAct loop through fake model servers and a fake HTTP tool.

use crate::support::fake_llm::{
    messages_of, ollama_calls, ollama_says, openai_calls, openai_says, FakeServer, Recorded, Reply,
};
use serde_json::{json, Value as Json};
use std::time::Duration;
use wagate::agent::react::{run, ReactError, ReactOutcome};
use wagate::agent::tools::ToolSet;
use wagate::config::{ModelSpec, ToolSpec};
use wagate::llm::{ChatMessage, Router, RouterError};

/// The weather tool: an HTTP tool at `tool_url` with templated path, headers and body.
fn weather_tool(tool_url: &str) -> Json {
    json!([{
        "type": "http",
        "name": "weather",
        "description": "Weather forecast for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"]
        },
        "http": {
            "method": "POST",
            "url": format!("{tool_url}/weather/{{{{ city }}}}?units=metric"),
            "headers": {"X-Api-Key": "key-123", "X-City": "{{city}}"},
            "body": {
                "city": "{{ city }}",
                "days": "{{days}}",
                "note": "forecast for {{city}} over {{ days }} days"
            },
            "timeout_seconds": 1,
            "max_response_bytes": 64
        }
    }])
}

fn router(provider: &str, model_url: &str) -> Router {
    let endpoint = match provider {
        "openai" => format!("{model_url}/v1"),
        _ => model_url.to_owned(),
    };
    let yaml = format!("primary: {{provider: {provider}, model: 'm', endpoint: '{endpoint}'}}");
    let spec: ModelSpec = serde_yaml::from_str(&yaml).expect("model spec yaml");
    Router::new(&spec, reqwest::Client::new())
}

/// The tool set of these `tools:` entries, read as the agent file's loader reads them.
fn tools(entries: Json) -> ToolSet {
    let yaml = serde_yaml::to_string(&entries).expect("tools yaml");
    let specs: Vec<ToolSpec> = serde_yaml::from_str(&yaml).expect("tools yaml");
    ToolSet::new(&specs, reqwest::Client::new()).expect("tool set")
}

fn conversation(question: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a weather bot."),
        ChatMessage::user(question),
    ]
}

/// The content of the last message of a chat request (the tool result, in these tests).
fn last_content(request: &Recorded) -> String {
    messages_of(request)
        .last()
        .and_then(|m| m["content"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A tool server that only answers the exact request the weather tool should make.
async fn weather_server() -> FakeServer {
    FakeServer::start(|request, _| {
        let expected_body = json!({
            "city": "São Paulo/SP",
            "days": 3,
            "note": "forecast for São Paulo/SP over 3 days"
        });
        if request.uri == "/weather/S%C3%A3o%20Paulo%2FSP?units=metric"
            && request.method == "POST"
            && request.header("x-api-key").as_deref() == Some("key-123")
            && request.json() == expected_body
        {
            Reply::json(json!({"temp_c": 31, "sky": "clear"}))
        } else {
            Reply::text(400, "unexpected request")
        }
    })
    .await
}

async fn run_turn(router: &Router, tools: &ToolSet, max_iterations: u32) -> ReactOutcome {
    run(
        router,
        tools,
        conversation("Weather in São Paulo?"),
        max_iterations,
    )
    .await
    .expect("the turn produces a reply")
}

#[tokio::test]
async fn an_ollama_model_answers_with_data_from_an_http_tool() {
    let tool = weather_server().await;
    let model = FakeServer::start(|request, index| match index {
        0 => ollama_calls("weather", json!({"city": "São Paulo/SP", "days": 3})),
        _ => ollama_says(&format!("Forecast: {}", last_content(request))),
    })
    .await;

    let outcome = run_turn(
        &router("ollama", &model.url),
        &tools(weather_tool(&tool.url)),
        5,
    )
    .await;

    assert_eq!(outcome.reply, r#"Forecast: {"sky":"clear","temp_c":31}"#);
    assert_eq!(outcome.tool_calls, vec!["weather"]);
    assert_eq!(outcome.model_calls, 2);
    assert_eq!(outcome.models, vec!["ollama/m", "ollama/m"]);
    assert_eq!(
        (outcome.usage.prompt_tokens, outcome.usage.completion_tokens),
        (22, 14)
    );
    let second = messages_of(&model.requests()[1]);
    assert_eq!(second.len(), 4);
    assert_eq!(
        second[2],
        json!({"role": "assistant", "content": "",
               "tool_calls": [{"function": {"name": "weather",
                                            "arguments": {"city": "São Paulo/SP", "days": 3}}}]})
    );
    assert_eq!(
        second[3],
        json!({"role": "tool", "content": r#"{"sky":"clear","temp_c":31}"#, "tool_name": "weather"})
    );
    let city_header = tool.requests()[0]
        .headers
        .get("x-city")
        .map(|v| v.as_bytes().to_vec());
    assert_eq!(
        city_header,
        Some("São Paulo/SP".as_bytes().to_vec()),
        "headers are filled too"
    );
}

#[tokio::test]
async fn an_openai_tool_result_follows_the_assistant_message_with_its_call_id() {
    let tool = weather_server().await;
    let model = FakeServer::start(|request, index| match index {
        0 => openai_calls(
            "call_abc",
            "weather",
            r#"{"city": "São Paulo/SP", "days": 3}"#,
        ),
        _ => openai_says(&format!("Forecast: {}", last_content(request))),
    })
    .await;

    let outcome = run_turn(
        &router("openai", &model.url),
        &tools(weather_tool(&tool.url)),
        5,
    )
    .await;

    assert_eq!(outcome.reply, r#"Forecast: {"sky":"clear","temp_c":31}"#);
    let second = messages_of(&model.requests()[1]);
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["content"], Json::Null);
    let call = &second[2]["tool_calls"][0];
    assert_eq!(
        (call["id"].clone(), call["type"].clone()),
        (json!("call_abc"), json!("function"))
    );
    assert_eq!(call["function"]["name"], "weather");
    let arguments: Json =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or(""))
            .expect("arguments go back as a JSON string");
    assert_eq!(arguments, json!({"city": "São Paulo/SP", "days": 3}));
    assert_eq!(
        second[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": r#"{"sky":"clear","temp_c":31}"#})
    );
}

#[tokio::test]
async fn invalid_tool_argument_json_goes_back_to_the_model_as_the_tool_result() {
    let tool = weather_server().await;
    let model = FakeServer::start(|request, index| match index {
        0 => openai_calls("call_1", "weather", r#"{"city": "São Paulo"#),
        _ => openai_says(&format!("The tool said: {}", last_content(request))),
    })
    .await;

    let outcome = run_turn(
        &router("openai", &model.url),
        &tools(weather_tool(&tool.url)),
        5,
    )
    .await;

    assert!(
        outcome.reply.contains("not valid JSON"),
        "{}",
        outcome.reply
    );
    assert!(
        outcome.reply.contains("EOF while parsing"),
        "{}",
        outcome.reply
    );
    assert_eq!(
        tool.count(),
        0,
        "the tool is not called with broken arguments"
    );
    let second = messages_of(&model.requests()[1]);
    assert_eq!(
        second[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city": "São Paulo"#
    );
    assert_eq!(second[3]["tool_call_id"], "call_1");
}

#[tokio::test]
async fn when_the_model_keeps_calling_tools_the_last_call_has_none_and_its_answer_is_the_reply() {
    let model = FakeServer::start(|request, _| {
        if request.json().get("tools").is_some() {
            ollama_calls("current_time", json!({}))
        } else {
            ollama_says("It is late; here is what I know.")
        }
    })
    .await;
    let clock = tools(json!([{"type": "builtin", "name": "current_time"}]));

    let outcome = run_turn(&router("ollama", &model.url), &clock, 3).await;

    let with_tools: Vec<bool> = model
        .requests()
        .iter()
        .map(|r| r.json().get("tools").is_some())
        .collect();
    assert_eq!(with_tools, vec![true, true, true, false]);
    assert_eq!(outcome.reply, "It is late; here is what I know.");
    assert_eq!(outcome.model_calls, 4);
    assert_eq!(outcome.tool_calls.len(), 3);
    assert_eq!(outcome.usage.prompt_tokens, 44);
    let last = messages_of(&model.requests()[3]);
    assert_eq!(
        last.len(),
        2 + 3 * 2,
        "every call and its result are in the final request"
    );
}

#[tokio::test]
async fn a_long_tool_response_reaches_the_model_cut_to_the_limit() {
    let tool = FakeServer::start(|_, _| Reply::text(200, "0123456789".repeat(100))).await;
    let model = FakeServer::start(|request, index| match index {
        0 => ollama_calls("weather", json!({"city": "Lima"})),
        _ => ollama_says(&last_content(request)),
    })
    .await;

    let outcome = run_turn(
        &router("ollama", &model.url),
        &tools(weather_tool(&tool.url)),
        5,
    )
    .await;

    let expected = format!(
        "{}\n[response cut at 64 bytes]",
        &"0123456789".repeat(7)[..64]
    );
    assert_eq!(outcome.reply, expected);
}

#[tokio::test]
async fn a_tool_http_error_or_timeout_is_told_to_the_model_and_the_turn_goes_on() {
    let tool = FakeServer::start(|_, index| match index {
        0 => Reply::text(503, "down for maintenance"),
        _ => Reply::json(json!({})).after(Duration::from_secs(3)),
    })
    .await;
    let model = FakeServer::start(|request, index| match index {
        0 | 1 => ollama_calls("weather", json!({"city": "Lima"})),
        _ => ollama_says(&format!("Sorry: {}", last_content(request))),
    })
    .await;

    let outcome = run_turn(
        &router("ollama", &model.url),
        &tools(weather_tool(&tool.url)),
        5,
    )
    .await;

    assert_eq!(
        last_content(&model.requests()[1]),
        "HTTP 503: down for maintenance"
    );
    assert_eq!(
        outcome.reply,
        "Sorry: The tool `weather` did not answer within 1s."
    );
}

#[tokio::test]
async fn a_turn_whose_models_all_fail_returns_the_router_error() {
    let model = FakeServer::start(|_, _| Reply::status(500, json!({"error": "boom"}))).await;

    let result = run(
        &router("ollama", &model.url),
        &ToolSet::empty(),
        conversation("hi"),
        5,
    )
    .await;

    match result {
        Err(ReactError::Models(RouterError::NoCandidate { attempts })) => {
            assert_eq!(
                attempts,
                vec![(
                    "ollama/m".to_owned(),
                    format!("at {}: HTTP 500: boom", model.url)
                )]
            )
        }
        other => panic!("expected NoCandidate, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_a_sending_tool_repeats_in_one_turn_is_sent_once_and_the_model_is_told() {
    let args = json!({"body": "Which size?", "buttons": ["Small", "Large"]});
    let model = FakeServer::start(move |_, index| match index {
        0 | 1 => ollama_calls("reply_buttons", args.clone()),
        _ => ollama_says(""),
    })
    .await;
    let tools = tools(json!([{"type": "builtin", "name": "reply_buttons"}]));
    let outcome = run(
        &router("ollama", &model.url),
        &tools,
        conversation("A pizza"),
        4,
    )
    .await
    .expect("the turn ends");
    assert_eq!(outcome.sends.len(), 1, "{:?}", outcome.sends);
    assert_eq!(outcome.tool_calls, ["reply_buttons", "reply_buttons"]);
    let told = last_content(&model.requests()[2]);
    assert!(told.starts_with("Already sent in this turn"), "{told}");
}
