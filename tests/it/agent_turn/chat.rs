//! `wagate chat` as a user runs it: the built binary, lines piped into stdin.

use super::harness::{agent, echo, ollama_model, roles_and_contents, write_config};
use crate::support::fake_llm::FakeServer;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Runs `wagate chat` on `config` and `data`, feeding `input`; returns (stdout, stderr, success).
async fn chat(
    config: &std::path::Path,
    data: &std::path::Path,
    input: &str,
) -> (String, String, bool) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .arg("chat")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start wagate chat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("wagate chat finishes")
        .expect("wagate chat output");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

#[tokio::test]
async fn wagate_chat_answers_each_piped_line_and_remembers_the_previous_exchange() {
    let model = FakeServer::start(echo).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &agent(ollama_model(&model.url, "llama3.1:8b")).default_memory(),
    );
    let data = dir.path().join("data");

    let (stdout, stderr, ok) = chat(&config, &data, "my name is Ana\nwhat is my name?\n").await;

    assert!(ok, "exit failed; stderr: {stderr}");
    assert!(
        stdout.contains("helper") && stdout.contains("ollama/llama3.1:8b"),
        "{stdout}"
    );
    assert!(stdout.contains("echo: my name is Ana\n"), "{stdout}");
    assert!(stdout.contains("echo: what is my name?\n"), "{stdout}");
    let second: Vec<String> = roles_and_contents(&model.requests()[1])
        .into_iter()
        .map(|(role, content)| format!("{role}: {content}"))
        .collect();
    assert_eq!(
        second,
        vec![
            "user: my name is Ana",
            "assistant: echo: my name is Ana",
            "user: what is my name?",
        ]
    );
    assert!(data.join("wagate.db").is_file());
}

#[tokio::test]
async fn wagate_chat_stops_at_quit_and_prints_a_failed_turns_error_then_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on port 9 of localhost: every turn fails to connect.
    let config = write_config(
        dir.path(),
        &agent(ollama_model("http://127.0.0.1:9", "gone")),
    );

    let (stdout, stderr, ok) = chat(
        &config,
        &dir.path().join("data"),
        "hello\nstill there?\n/quit\nnever sent\n",
    )
    .await;

    assert!(ok, "exit failed; stderr: {stderr}");
    let errors = stdout.matches("[error]").count();
    assert_eq!(errors, 2, "{stdout}");
    assert!(stdout.contains("ollama/gone"), "{stdout}");
}

#[tokio::test]
async fn wagate_chat_with_an_unknown_agent_names_the_agents_it_has() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &agent(ollama_model("http://127.0.0.1:9", "m")));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["chat", "--agent", "nobody", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run wagate chat");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nobody") && stderr.contains("helper"),
        "{stderr}"
    );
}

#[tokio::test]
async fn wagate_chat_shows_what_a_sending_tool_sent_as_text() {
    let model = FakeServer::start(|request, _| {
        let called = crate::support::fake_llm::messages_of(request)
            .iter()
            .any(|m| m["role"] == "tool");
        if called {
            crate::support::fake_llm::ollama_says("")
        } else {
            crate::support::fake_llm::ollama_calls(
                "reply_buttons",
                serde_json::json!({"body": "Which size?", "buttons": ["Small", "Large"]}),
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &agent(ollama_model(&model.url, "llama3.1:8b")).builtins(&["reply_buttons"]),
    );
    let (stdout, stderr, ok) = chat(&config, &dir.path().join("data"), "a pizza\n").await;
    assert!(ok, "stderr: {stderr}");
    assert!(
        stdout.contains("Which size?\n[buttons: Small | Large]"),
        "{stdout}"
    );
    assert!(!stdout.contains("[error]"), "{stdout}");
}
