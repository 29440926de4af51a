//! Hot reload: edits apply to the next turn, bad edits are refused, running turns keep theirs.

use crate::e2e::live_config;
use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use std::time::Duration;

async fn generation(server: &TestServer) -> u64 {
    let ready: serde_json::Value = server.get("/readyz").await.json().await.unwrap();
    ready["config_generation"].as_u64().unwrap()
}

async fn wait_for_generation(server: &TestServer, wanted: u64) -> bool {
    for _ in 0..100 {
        if generation(server).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn system_prompt(request: &fake_llm::Recorded) -> String {
    fake_llm::messages_of(request)[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_edited_agent_file_applies_to_the_next_turn_without_a_restart() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("hi")).await;
    let config = live_config(&graph, &llm.url, "llama3.1:8b", "");
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    server
        .post_signed(&text_body(&[("wamid.rl.1", "15551231001", "one")]))
        .await;
    graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert!(system_prompt(&llm.requests()[0]).contains("You are whatsapp-assistant"));

    let agent_file = config.path().join("agents/whatsapp-assistant.agent.yaml");
    let edited = std::fs::read_to_string(&agent_file)
        .unwrap()
        .replace("You are {{ agent_name }}.", "You are the NEW prompt.");
    std::fs::write(&agent_file, edited).unwrap();
    assert!(
        wait_for_generation(&server, 2).await,
        "the edit was picked up"
    );

    server
        .post_signed(&text_body(&[("wamid.rl.2", "15551231001", "two")]))
        .await;
    graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    assert!(system_prompt(&llm.requests()[1]).contains("You are the NEW prompt."));
    assert!(
        server
            .wait_for_metric("wagate_config_reloads_total{outcome=\"applied\"} 1", 2)
            .await
    );
}

#[tokio::test]
async fn an_invalid_edit_is_refused_and_the_previous_config_stays_in_force() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("still here")).await;
    let config = live_config(&graph, &llm.url, "llama3.1:8b", "");
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    let agent_file = config.path().join("agents/whatsapp-assistant.agent.yaml");
    let broken = std::fs::read_to_string(&agent_file)
        .unwrap()
        .replace("provider: ollama", "provider: telepathy");
    std::fs::write(&agent_file, broken).unwrap();
    assert!(
        server
            .wait_for_metric("wagate_config_reloads_total{outcome=\"rejected\"} 1", 5)
            .await
    );
    assert_eq!(generation(&server).await, 1);

    server
        .post_signed(&text_body(&[("wamid.rl.bad", "15551231002", "hello")]))
        .await;
    let sends = graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert_eq!(
        sends[0].body["text"]["body"], "still here",
        "the old agent still answers"
    );
}

#[tokio::test]
async fn a_turn_running_during_a_reload_finishes_with_the_config_it_started_with() {
    let graph = FakeGraph::start().await;
    let old_model = FakeServer::start(|_, _| {
        fake_llm::ollama_says("from the old model").after(Duration::from_millis(1500))
    })
    .await;
    let new_model = FakeServer::start(|_, _| fake_llm::ollama_says("from the new model")).await;
    let config = live_config(&graph, &old_model.url, "llama3.1:8b", "");
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    server
        .post_signed(&text_body(&[("wamid.rl.run", "15551231003", "first")]))
        .await;
    assert!(
        eventually(5, || old_model.count() == 1).await,
        "the first turn is running"
    );
    let agent_file = config.path().join("agents/whatsapp-assistant.agent.yaml");
    let moved = std::fs::read_to_string(&agent_file)
        .unwrap()
        .replace(&old_model.url, &new_model.url);
    std::fs::write(&agent_file, moved).unwrap();
    assert!(wait_for_generation(&server, 2).await);

    server
        .post_signed(&text_body(&[("wamid.rl.next", "15551231004", "second")]))
        .await;
    let sends = graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    let reply_to = |id: &str| {
        sends
            .iter()
            .find(|s| s.body["context"]["message_id"] == id)
            .map(|s| s.body["text"]["body"].clone())
    };
    assert_eq!(reply_to("wamid.rl.run").unwrap(), "from the old model");
    assert_eq!(reply_to("wamid.rl.next").unwrap(), "from the new model");
    assert_eq!(old_model.count(), 1);
}
