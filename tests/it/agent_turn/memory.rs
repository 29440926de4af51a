//! Conversation memory as a turn uses it: the window, isolation between users, the ttl,
//! restarts and repeated turns.

use super::harness::{agent, answer, echo, ollama_model, roles_and_contents, Harness};
use crate::support::fake_llm::FakeServer;
use crate::support::Agent;
use wagate::memory::{unix_now, MemoryEntry, MemoryRole};

fn spec_with_memory(model_url: &str, max_turns: u64, ttl: u64) -> Agent {
    agent(ollama_model(model_url, "m"))
        .system_prompt("You remember.")
        .memory(max_turns, Some(ttl))
}

/// What the model was sent in request `index`, without the system prompt.
fn conversation_of(model: &FakeServer, index: usize) -> Vec<(String, String)> {
    roles_and_contents(&model.requests()[index])
        .into_iter()
        .filter(|(role, _)| role != "system")
        .collect()
}

fn pair(role: &str, content: &str) -> (String, String) {
    (role.to_owned(), content.to_owned())
}

#[tokio::test]
async fn a_turn_sees_the_newest_messages_of_its_own_user_and_none_of_another_users() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec_with_memory(&model.url, 2, 3600));
    harness.say("wa_111", 1, "first from 111").await;
    harness.say("wa_222", 2, "only from 222").await;
    harness.say("wa_111", 3, "second from 111").await;

    harness.say("wa_111", 4, "third from 111").await;

    // max_turns 2: the last exchange of 111 only; nothing of 222.
    assert_eq!(
        conversation_of(&model, 3),
        vec![
            pair("user", "second from 111"),
            pair("assistant", "echo: second from 111"),
            pair("user", "third from 111"),
        ]
    );
    // 222's own turn saw nothing of 111.
    assert_eq!(
        conversation_of(&model, 1),
        vec![pair("user", "only from 222")]
    );
}

#[tokio::test]
async fn messages_older_than_the_ttl_are_not_shown_to_the_model() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec_with_memory(&model.url, 20, 600));
    let now = unix_now();
    harness
        .memory
        .append(
            "wa_1",
            1,
            &[
                MemoryEntry::user("from yesterday", now - 86_400),
                MemoryEntry::assistant("old answer", now - 86_400),
            ],
        )
        .await
        .expect("append old turn");
    harness
        .memory
        .append(
            "wa_1",
            2,
            &[
                MemoryEntry::user("from five minutes ago", now - 300),
                MemoryEntry::assistant("recent answer", now - 300),
            ],
        )
        .await
        .expect("append recent turn");

    harness.say("wa_1", 3, "and now?").await;

    assert_eq!(
        conversation_of(&model, 0),
        vec![
            pair("user", "from five minutes ago"),
            pair("assistant", "recent answer"),
            pair("user", "and now?"),
        ]
    );
}

#[tokio::test]
async fn memory_survives_a_restart_on_the_same_database_file() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec_with_memory(&model.url, 20, 3600));
    harness.say("wa_1", 1, "my name is Ana").await;

    let harness = harness.restart();
    harness.say("wa_1", 2, "what is my name?").await;

    assert_eq!(
        conversation_of(&model, 1),
        vec![
            pair("user", "my name is Ana"),
            pair("assistant", "echo: my name is Ana"),
            pair("user", "what is my name?"),
        ]
    );
}

#[tokio::test]
async fn a_repeated_turn_id_is_remembered_once() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(spec_with_memory(&model.url, 20, 3600));

    let first = harness.say("wa_1", 7, "hello").await;
    let again = harness.say("wa_1", 7, "hello").await;

    assert_eq!(answer(&first), "echo: hello");
    assert_eq!(answer(&again), "echo: hello");
    let remembered = harness.remembered("wa_1").await;
    let roles: Vec<MemoryRole> = remembered.iter().map(|e| e.role).collect();
    assert_eq!(roles, vec![MemoryRole::User, MemoryRole::Assistant]);
}

#[tokio::test]
async fn an_agent_without_memory_neither_reads_nor_writes_it() {
    let model = FakeServer::start(echo).await;
    let harness = Harness::start(agent(ollama_model(&model.url, "m")));
    harness.say("wa_1", 1, "first").await;

    harness.say("wa_1", 2, "second").await;

    assert_eq!(conversation_of(&model, 1), vec![pair("user", "second")]);
    assert!(harness.remembered("wa_1").await.is_empty());
}
