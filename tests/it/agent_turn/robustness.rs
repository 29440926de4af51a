//! What real small models do that fakes never did: tool calls written as text, a tool call as
//! the last answer, errors a user must be able to act on, a server that names its model by file.

use super::harness::{agent, answer, failure, ollama_model, roles_and_contents, Harness};
use crate::support::fake_llm::{
    messages_of, ollama_calls, ollama_says, openai_says, FakeServer, Reply,
};
use crate::support::{Agent, Model};
use serde_json::json;
use wagate::agent::react::LAST_CALL_NOTE;
use wagate::memory::MemoryRole;

/// The agent on `model_url` with the `current_time` tool.
fn with_clock(model_url: &str) -> Agent {
    agent(ollama_model(model_url, "llama3.1:8b")).builtins(&["current_time"])
}

#[tokio::test]
async fn the_last_call_after_the_tool_budget_tells_the_model_to_answer_without_tools() {
    let model = FakeServer::start(|request, _| {
        if request.json()["tools"].is_array() {
            ollama_calls("current_time", json!({"utc_offset": "-03:00"}))
        } else {
            ollama_says("It is morning in São Paulo.")
        }
    })
    .await;
    let harness = Harness::start(with_clock(&model.url).max_iterations(2));

    let result = harness.say("wa_1", 1, "what time is it?").await;

    assert_eq!(answer(&result), "It is morning in São Paulo.");
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let last = requests[2].json();
    assert!(last.get("tools").is_none(), "{last}");
    let (role, content) = roles_and_contents(&requests[2]).pop().unwrap();
    assert_eq!(role, "tool");
    assert!(content.ends_with(LAST_CALL_NOTE), "{content}");
}

#[tokio::test]
async fn a_tool_call_written_as_the_last_answer_is_never_sent_nor_remembered() {
    let model = FakeServer::start(|request, _| {
        if request.json()["tools"].is_array() {
            ollama_calls("current_time", json!({}))
        } else {
            ollama_says(r#"{"name": "current_time", "arguments": {"utc_offset": "+00:00"}}"#)
        }
    })
    .await;
    let harness = Harness::start(with_clock(&model.url).max_iterations(1).default_memory());

    let result = harness.say("wa_1", 1, "time?").await;

    let error = failure(&result);
    assert!(error.contains("tool call"), "{error}");
    let remembered = harness.remembered("wa_1").await;
    assert!(
        remembered.iter().all(|m| m.role == MemoryRole::User),
        "{remembered:?}"
    );
}

#[tokio::test]
async fn a_tool_call_written_as_text_is_run_like_a_native_one() {
    let model = FakeServer::start(|request, index| match index {
        0 => ollama_says(
            "<tool_call>\n{\"name\": \"current_time\", \"arguments\": {\"utc_offset\": \"00:00\"}}\n</tool_call>",
        ),
        _ => {
            let tool = roles_and_contents(request)
                .into_iter()
                .find(|(role, _)| role == "tool")
                .map(|(_, c)| c)
                .unwrap_or_default();
            ollama_says(&format!("clock says {tool}"))
        }
    })
    .await;
    let harness = Harness::start(with_clock(&model.url));

    let result = harness.say("wa_1", 1, "time?").await;

    let reply = answer(&result);
    assert!(reply.starts_with("clock says 20"), "{reply}");
    assert!(reply.contains("Z ("), "\"00:00\" is UTC: {reply}");
    assert_eq!(result.tool_calls, ["current_time"]);
    let second = messages_of(&model.requests()[1]);
    assert!(second.iter().any(|m| m["role"] == "tool"), "{second:?}");
}

#[tokio::test]
async fn a_tool_call_written_as_text_naming_no_offered_tool_is_not_sent_to_the_customer() {
    let model = FakeServer::start(|_, _| {
        ollama_says("```json\n{\"name\": \"book_flight\", \"arguments\": {\"to\": \"Lima\"}}\n```")
    })
    .await;
    let harness = Harness::start(with_clock(&model.url));

    let error = failure(&harness.say("wa_1", 1, "book it").await);
    assert!(error.contains("book_flight"), "{error}");
}

#[tokio::test]
async fn a_model_error_names_the_endpoint_and_what_to_do() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    };
    let harness = Harness::start(agent(ollama_model(&closed, "llama3.1:8b")));

    let error = failure(&harness.say("wa_1", 1, "hi").await);

    assert!(error.contains(&format!("at {closed}")), "{error}");
    assert!(error.contains("ollama serve"), "{error}");
    assert!(error.contains("OLLAMA_ENDPOINT"), "{error}");
}

#[tokio::test]
async fn wagate_chat_prints_a_failed_turns_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    };
    let config =
        super::harness::write_config(dir.path(), &agent(ollama_model(&closed, "llama3.1:8b")));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .arg("chat")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child
                .stdin
                .take()
                .unwrap()
                .into_owned_fd()
                .map(std::fs::File::from)?;
            stdin.write_all(b"hello\n")?;
            drop(stdin);
            Ok(child)
        })
        .expect("start wagate chat")
        .wait_with_output()
        .await
        .expect("wagate chat ends");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(all.matches("cannot connect").count(), 1, "{all}");
    assert!(
        all.contains("[error]") && all.contains("ollama serve"),
        "{all}"
    );
}

#[tokio::test]
async fn check_online_accepts_a_llama_server_that_lists_its_model_by_file_path() {
    let server = FakeServer::start(|request, _| match request.uri.as_str() {
        "/v1/models" => Reply::json(json!({"object": "list", "data": [{
            "id": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "architecture": {"input_modalities": ["text"]},
            "meta": {"n_ctx": 2048}
        }]})),
        "/v1/chat/completions" => openai_says("OK"),
        _ => Reply::text(404, "File Not Found"),
    })
    .await;
    let text_model = Model::openai(&format!("{}/v1", server.url), "smollm2");
    let harness = Harness::start(agent(text_model.clone()));

    let report = wagate::ops::online::run(&harness.config).await;
    let text = report.render();
    assert!(report.passed(), "{text}");
    let line = report
        .lines
        .iter()
        .find(|l| l.subject.starts_with("model openai/smollm2"))
        .unwrap();
    assert!(line.detail.contains("--alias"), "{text}");
    assert!(line.detail.contains("2048 tokens"), "{text}");

    // The same text-only server declared with vision is caught.
    let vision_model = text_model.capabilities(&["vision", "tools"]);
    let harness = Harness::start(agent(vision_model));
    let report = wagate::ops::online::run(&harness.config).await;
    let text = report.render();
    assert!(!report.passed(), "{text}");
    assert!(text.contains("reports no vision"), "{text}");
}
