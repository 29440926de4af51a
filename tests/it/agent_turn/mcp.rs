//! `type: mcp` tools against real MCP servers from package registries: the test fixture
//! `tests/fixtures/mcp/tool_server.py` (PyPI `mcp`, the SDK's own server API) and the reference
//! `@modelcontextprotocol/server-everything` (npm). `.ci/run` installs both.

use super::harness::{agent, answer, ollama_model, Harness};
use crate::support::external::component;
use crate::support::fake_llm::{messages_of, ollama_calls, ollama_says, FakeServer};
use serde_json::{json, Value};
use std::time::Duration;
use wagate::agent::tools::ToolSet;
use wagate::config::ToolSpec;
use wagate::llm::{ToolArguments, ToolCall};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mcp/tool_server.py"
);

/// The Python that has the `mcp` package, or `None` (the test is skipped).
fn python() -> Option<String> {
    component(
        "WAGATE_TEST_MCP_PYTHON",
        "a Python with the PyPI `mcp` package (the MCP test server)",
    )
}

/// The tool entry for the fixture over stdio, with the keys of `extra` added.
fn stdio_tool(python: &str, extra: Value) -> Value {
    let mut entry = json!({"type": "mcp", "name": "kb", "command": python, "args": [FIXTURE]});
    if let (Some(entry), Value::Object(extra)) = (entry.as_object_mut(), extra) {
        entry.extend(extra);
    }
    entry
}

/// A tool set of this one tool entry, read as the agent file's loader reads it.
fn tool_set(entry: Value) -> ToolSet {
    let yaml = serde_yaml::to_string(&json!([entry])).expect("tool yaml");
    let specs: Vec<ToolSpec> = serde_yaml::from_str(&yaml).expect("tool yaml");
    ToolSet::new(&specs, reqwest::Client::new()).expect("tool set")
}

/// Waits until the servers of `tools` offer their tools. `timeout_seconds` bounds a server's
/// start as well as each call, and on a loaded machine (the whole test binary running beside
/// it) starting Python can take longer than a short timeout: the supervisor starts it again.
async fn offered(tools: &ToolSet) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tools.definitions().await.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn call(name: &str, arguments: serde_json::Value) -> ToolCall {
    ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: ToolArguments::Valid(arguments),
    }
}

#[tokio::test]
async fn an_mcp_servers_tools_are_offered_with_its_prefix_and_their_results_reach_the_model() {
    let Some(python) = python() else { return };
    let model = FakeServer::start(|request, index| match index {
        0 => ollama_calls("kb__add", json!({"a": 2, "b": 3})),
        _ => {
            let last = messages_of(request).last().cloned().unwrap_or_default();
            ollama_says(&format!(
                "the sum is {}",
                last["content"].as_str().unwrap_or("?")
            ))
        }
    })
    .await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "llama3.1:8b"))
            .tool(stdio_tool(&python, json!({"include": ["add", "shout"]}))),
    );

    let result = harness.say("wa_1", 1, "what is 2 + 3?").await;

    assert_eq!(answer(&result), "the sum is 5");
    let offered: Vec<String> = model.requests()[0].json()["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .map(|t| {
            t["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        offered,
        ["kb__add", "kb__shout"],
        "include filters the tools"
    );
    let schema = &model.requests()[0].json()["tools"][0]["function"]["parameters"];
    assert_eq!(schema["properties"]["a"]["type"], "integer", "{schema}");
    assert_eq!(result.tool_calls, ["kb__add"]);
}

#[tokio::test]
async fn a_stdio_server_that_dies_is_started_again_and_stopped_when_its_agent_goes() {
    let Some(python) = python() else { return };
    let tools = tool_set(stdio_tool(&python, json!({})));
    tools.definitions().await;
    let first: u32 = tools
        .call(&call("kb__pid", json!({})))
        .await
        .parse()
        .expect("a pid");

    let died = tools.call(&call("kb__die", json!({}))).await;
    assert!(died.contains("kb__die"), "{died}");

    let mut second = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(pid) = tools.call(&call("kb__pid", json!({}))).await.parse::<u32>() {
            second = Some(pid);
            break;
        }
    }
    let second = second.expect("the server came back within 10 s");
    assert_ne!(first, second, "a new process");

    drop(tools);
    let proc_dir = format!("/proc/{second}");
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            gone = true;
            break;
        }
    }
    assert!(gone, "the server process stops with its tool set");
}

#[tokio::test]
async fn an_mcp_call_is_bounded_by_its_timeout_and_its_result_is_cut() {
    let Some(python) = python() else { return };
    let tools = tool_set(stdio_tool(
        &python,
        json!({"timeout_seconds": 3, "max_response_bytes": 100}),
    ));
    offered(&tools).await;

    let started = std::time::Instant::now();
    let slow = tools.call(&call("kb__slow", json!({"seconds": 20}))).await;
    assert!(slow.contains("did not answer within 3 seconds"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(6));

    let big = tools.call(&call("kb__big", json!({"size": 5000}))).await;
    assert!(big.starts_with(&"x".repeat(100)), "{big}");
    assert!(big.contains("[response cut at 100 bytes]"), "{big}");
    assert!(big.len() < 200);
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn a_streamable_http_server_is_reached_by_url_with_the_configured_headers() {
    let Some(python) = python() else { return };
    let port = free_port();
    let _server = tokio::process::Command::new(&python)
        .args([FIXTURE, "--http", &port.to_string()])
        .kill_on_drop(true)
        .spawn()
        .expect("start the HTTP MCP server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://127.0.0.1:{port}/mcp");

    let with_token = tool_set(json!({
        "type": "mcp", "name": "web", "url": url,
        "headers": {"Authorization": "Bearer test-token"}
    }));
    let names: Vec<String> = with_token
        .definitions()
        .await
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(names.contains(&"web__shout".to_owned()), "{names:?}");
    let shouted = with_token
        .call(&call("web__shout", json!({"text": "hello"})))
        .await;
    assert_eq!(shouted, "HELLO");

    let without = tool_set(json!({"type": "mcp", "name": "web", "url": url, "timeout_seconds": 5}));
    assert!(
        without.definitions().await.is_empty(),
        "refused without the header"
    );
    let problem = without.servers()[0].problem().unwrap_or_default();
    assert!(!problem.is_empty());
}

#[tokio::test]
async fn check_online_starts_each_mcp_server_and_lists_its_tools() {
    let Some(python) = python() else { return };
    let model = FakeServer::start(|_, _| ollama_says("hi")).await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "llama3.1:8b"))
            .tool(stdio_tool(&python, json!({"include": ["add", "pid"]})))
            .tool(json!({"type": "mcp", "name": "broken", "command": "/nonexistent/mcp-server"})),
    );

    let report = wagate::ops::online::run(&harness.config).await;
    let text = report.render();

    let kb = report
        .lines
        .iter()
        .find(|l| l.subject.starts_with("mcp kb"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(kb.detail, "2 tools: kb__add, kb__pid", "{text}");
    let broken = report
        .lines
        .iter()
        .find(|l| l.subject.starts_with("mcp broken"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(broken.detail.contains("/nonexistent/mcp-server"), "{text}");
    assert!(!report.passed());
}

#[tokio::test]
async fn the_reference_everything_server_from_npm_answers_through_its_prefix() {
    let Some(command) = component(
        "WAGATE_TEST_MCP_EVERYTHING",
        "the npm package @modelcontextprotocol/server-everything",
    ) else {
        return;
    };
    let tools = tool_set(json!({
        "type": "mcp", "name": "everything", "command": command,
        "args": ["stdio"], "include": ["echo"]
    }));
    let names: Vec<String> = tools
        .definitions()
        .await
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["everything__echo"]);
    let echoed = tools
        .call(&call("everything__echo", json!({"message": "olá"})))
        .await;
    assert!(echoed.contains("olá"), "{echoed}");
}

#[tokio::test]
async fn an_agents_mcp_server_stops_when_a_reload_or_shutdown_drops_its_runtime() {
    let Some(python) = python() else { return };
    let model = FakeServer::start(|request, index| match index {
        0 => ollama_calls("kb__pid", json!({})),
        _ => {
            let last = messages_of(request).last().cloned().unwrap_or_default();
            ollama_says(last["content"].as_str().unwrap_or("?"))
        }
    })
    .await;
    let harness = Harness::start(
        agent(ollama_model(&model.url, "llama3.1:8b")).tool(stdio_tool(&python, json!({}))),
    );
    let pid: u32 = answer(&harness.say("wa_1", 1, "your pid?").await)
        .parse()
        .expect("the server's pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // A reload installs a new runtime and drops the old one; shutdown drops it too.
    drop(harness);

    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            gone = true;
            break;
        }
    }
    assert!(gone, "the MCP server process {pid} stopped");
}
