//! Reactions: recorded per reacted message (shown in the operator API), not answered by
//! default; with `spec.whatsapp.reactions_to_agent` the model reads which emoji went on which
//! of its messages.

use super::{body_of, world};
use crate::support::fake_llm;
use crate::support::{Agent, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

fn reaction(id: &str, from: &str, target: &str, emoji: &str) -> Vec<u8> {
    body_of(
        from,
        json!({"from": from, "id": id, "timestamp": chrono::Utc::now().timestamp().to_string(),
               "type": "reaction", "reaction": {"message_id": target, "emoji": emoji}}),
    )
}

/// The customer says hello, the agent answers; returns the conversation id and the wamid Meta
/// gave the answer, once the answer is recorded as sent.
async fn answered(w: &TestApp, user: &str) -> (String, String) {
    w.customer_says("wamid.r.hi", user, "how much is it?").await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    let wamid = w.graph.accepted_sends()[0].0.clone();
    let id = w.listed(user).await["id"].as_str().unwrap().to_owned();
    for _ in 0..250 {
        if w.messages(&id)
            .await
            .iter()
            .any(|m| m["message_id"] == wamid.as_str())
        {
            return (id, wamid);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the answer was never recorded as sent");
}

fn reaction_on(messages: &[Value], wamid: &str) -> Value {
    messages
        .iter()
        .find(|m| m["message_id"] == wamid && m["direction"] == "out")
        .map(|m| m["reaction"].clone())
        .expect("the agent's message is listed")
}

#[tokio::test]
async fn a_reaction_to_the_agents_message_is_recorded_and_by_default_not_answered() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("It is 10 EUR."),
    )
    .await;
    let user = "15550005001";
    let (id, wamid) = answered(&w, user).await;

    w.post(&reaction("wamid.r.1", user, &wamid, "👍")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.chats().len(), 1, "no turn for a reaction");
    assert_eq!(w.sent_texts().len(), 1);
    assert_eq!(reaction_on(&w.messages(&id).await, &wamid), "👍");

    // Changed, then removed (Meta sends an empty emoji).
    w.post(&reaction("wamid.r.2", user, &wamid, "❤️")).await;
    assert_eq!(reaction_on(&w.messages(&id).await, &wamid), "❤️");
    w.post(&reaction("wamid.r.3", user, &wamid, "")).await;
    assert_eq!(reaction_on(&w.messages(&id).await, &wamid), Value::Null);
    assert_eq!(w.chats().len(), 1);
}

#[tokio::test]
async fn with_reactions_to_agent_the_model_reads_the_emoji_and_the_message_it_was_on() {
    let agent = |a: Agent| a.set("whatsapp", json!({"reactions_to_agent": true}));
    let w = world("llama3.1:8b", agent, |request, _| {
        let asked = String::from_utf8_lossy(&request.body).into_owned();
        fake_llm::ollama_says(if asked.contains("[Reaction") {
            "Sorry to hear that! What went wrong?"
        } else {
            "It is **10 EUR**."
        })
    })
    .await;
    let user = "15550005002";
    let (_, wamid) = answered(&w, user).await;

    w.post(&reaction("wamid.r.4", user, &wamid, "👎")).await;
    let sends = w
        .graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(
        sends[1].body["text"]["body"],
        "Sorry to hear that! What went wrong?"
    );
    let chats = w.chats();
    assert_eq!(chats.len(), 2);
    let last = fake_llm::messages_of(&chats[1]).last().cloned().unwrap();
    // The message as the customer saw it (WhatsApp's bold), quoted.
    assert_eq!(
        last["content"],
        "[Reaction 👎 to your message: \"It is *10 EUR*.\"]"
    );

    // A removal, and an emoji on a message the agent did not send, start no turn.
    w.post(&reaction("wamid.r.5", user, &wamid, "")).await;
    w.post(&reaction("wamid.r.6", user, "wamid.customers.own", "😂"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.chats().len(), 2);
    assert_eq!(w.sent_texts().len(), 2);
}
