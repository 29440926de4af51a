//! Taking a conversation over and handing it back through the operator API; what a
//! conversation shows; operator replies.

use super::{message, world};
use crate::support::fake_llm;
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

fn texts_of(request: &fake_llm::Recorded) -> String {
    fake_llm::messages_of(request)
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_conversation_with_a_person_gets_no_agent_turn_and_its_messages_are_still_shown() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("Hello from the agent")).await;
    w.customer_says("wamid.api.1", "15550002001", "hi").await;
    assert_eq!(
        w.graph
            .wait_for_text_sends(1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let id = w.conversation_of("15550002001").await;
    assert_eq!(w.state_of(&id).await, "agent");

    let (status, body) = w
        .api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("human")),
        "{body}"
    );
    let (status, again) = w
        .api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(
        (status, again["changed"].as_bool()),
        (200, Some(false)),
        "idempotent"
    );
    let humans = w.conversations("?state=human").await;
    assert_eq!(humans.len(), 1);
    assert_eq!(humans[0]["id"], id.as_str());
    assert_eq!(humans[0]["opted_out"], false);
    assert_eq!(humans[0]["contact_name"], "Ana");
    assert!(w.conversations("?state=agent").await.is_empty());

    let receipts = w.receipts();
    w.customer_says("wamid.api.2", "15550002001", "are you there?")
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.llm.count(), 1, "no agent turn while a person has it");
    assert_eq!(w.graph.text_sends().len(), 1);
    assert_eq!(w.receipts(), receipts, "no read receipt from the agent");

    let messages = w.messages(&id).await;
    let shown: Vec<(&str, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap(),
                m["author"].as_str().unwrap(),
                m["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("in", "customer", "hi"),
            ("out", "agent", "Hello from the agent"),
            ("in", "customer", "are you there?"),
        ]
    );
    assert_eq!(messages[1]["status"], "sent");
    assert_eq!(messages[2]["type"], "text");
    assert!(messages[2]["at"].as_str().unwrap().ends_with('Z'));

    // Back to the agent: the message that came in meanwhile is never answered by it.
    let (status, body) = w
        .api_post(&format!("/v1/conversations/{id}/release"), json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("agent")),
        "{body}"
    );
    let (status, _) = w
        .api_post(&format!("/v1/conversations/{id}/release"), json!({}))
        .await;
    assert_eq!(status, 200, "idempotent");
    w.customer_says("wamid.api.3", "15550002001", "back again")
        .await;
    assert_eq!(
        w.graph
            .wait_for_text_sends(2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
    assert_eq!(w.llm.count(), 2);
    // Not answered: the new message is the one the model answers; the held one is only past
    // conversation (memory), before it.
    let asked = fake_llm::messages_of(&w.llm.requests()[1]);
    assert_eq!(asked.last().unwrap()["content"], "back again");
    let seen = texts_of(&w.llm.requests()[1]);
    assert_eq!(seen.matches("are you there?").count(), 1, "{seen}");
    assert!(
        w.server
            .wait_for_metric("wagate_handoffs_total{trigger=\"operator\"} 1", 5)
            .await
    );
}

#[tokio::test]
async fn an_operator_reply_reaches_the_customer_once_and_the_agent_remembers_it() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("agent answer")).await;
    w.customer_says("wamid.op.1", "15550002002", "I need help")
        .await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    let id = w.conversation_of("15550002002").await;
    w.api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    w.customer_says("wamid.op.held", "15550002002", "where is order 123?")
        .await;

    let (status, body) = w
        .api_post(
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "**Hi**, this is Maria from the team"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["id"].is_string(), "{body}");

    let sends = w
        .graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(sends[1].body["to"], "15550002002");
    assert_eq!(
        sends[1].body["text"]["body"], "*Hi*, this is Maria from the team",
        "formatted for WhatsApp like the agent's replies"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.graph.text_sends().len(), 2, "sent exactly once");

    let messages = w.messages(&id).await;
    let operator: Vec<&Value> = messages
        .iter()
        .filter(|m| m["author"] == "operator")
        .collect();
    assert_eq!(operator.len(), 1);
    assert_eq!(operator[0]["direction"], "out");
    assert_eq!(operator[0]["status"], "sent");
    assert!(
        w.server
            .wait_for_metric("wagate_operator_replies_total 1", 5)
            .await
    );

    // Back with the agent, which knows what the person and the customer said meanwhile.
    w.customer_says("wamid.op.after", "15550002002", "great, it arrived")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.api_post(&format!("/v1/conversations/{id}/release"), json!({}))
        .await;
    w.customer_says("wamid.op.2", "15550002002", "thanks, one more thing")
        .await;
    w.graph
        .wait_for_text_sends(3, Duration::from_secs(10))
        .await;
    let history: Vec<(String, String)> = fake_llm::messages_of(&w.llm.requests()[1])
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let at = |role: &str, text: &str| {
        history
            .iter()
            .position(|(r, c)| r == role && c.contains(text))
            .unwrap_or_else(|| panic!("{role} {text:?} not in {history:?}"))
    };
    let held = at("user", "where is order 123?");
    let maria = at("assistant", "this is Maria");
    let after = at("user", "great, it arrived");
    let now = at("user", "thanks, one more thing");
    assert!(held < maria && maria < after && after < now, "{history:?}");
    assert_eq!(
        now,
        history.len() - 1,
        "the new message is the one answered"
    );
}

#[tokio::test]
async fn an_operator_reply_after_24_hours_of_customer_silence_is_refused_with_409() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("agent answer")).await;
    let day_old = message("wamid.old.1", "15550002003", "hello?", 25 * 3600);
    assert_eq!(w.server.post_signed(&day_old).await.status(), 200);
    let id = w.conversation_of("15550002003").await;
    let (status, body) = w
        .api_post(
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "late reply"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "outside_24h_window");
    assert!(
        body["reason"].as_str().unwrap().contains("24 hours"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!w.sent_texts().iter().any(|t| t.contains("late reply")));
}

#[tokio::test]
async fn a_turn_running_when_a_person_takes_over_sends_nothing() {
    let w = world(
        |c| c,
        |_, _| fake_llm::ollama_says("this must not go out").after(Duration::from_millis(1500)),
    )
    .await;
    w.customer_says("wamid.race.1", "15550002004", "hello")
        .await;
    let id = w.conversation_of("15550002004").await;
    assert!(
        eventually(5, || w.llm.count() == 1).await,
        "the turn started"
    );
    let (status, _) = w
        .api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(w.graph.text_sends().is_empty(), "{:?}", w.sent_texts());
}

#[tokio::test]
async fn unknown_conversations_are_not_found() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("hi")).await;
    let unknown = wagate::handoff::conversation_id(&wagate::inbox::LaneKey {
        phone_number_id: PHONE_NUMBER_ID.into(),
        user: "19999999999".into(),
    });
    for path in [
        format!("/v1/conversations/{unknown}/handoff"),
        format!("/v1/conversations/{unknown}/release"),
        format!("/v1/conversations/{unknown}/messages"),
        "/v1/conversations/not-an-id/handoff".to_string(),
    ] {
        let (status, body) = w.api_post(&path, json!({"text": "x"})).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = w
        .api_get(&format!("/v1/conversations/{unknown}/messages"))
        .await;
    assert_eq!(status, 404);
}

/// A statuses webhook for one of our messages.
fn status_body(wamid: &str, to: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1700000100",
                          "recipient_id": to}]
        }}]}]
    }))
    .unwrap()
}

#[tokio::test]
async fn delivery_ticks_of_an_operator_reply_follow_metas_statuses() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("agent answer")).await;
    w.customer_says("wamid.tick.1", "15550002005", "hello")
        .await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    let id = w.conversation_of("15550002005").await;
    w.api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    w.api_post(
        &format!("/v1/conversations/{id}/messages"),
        json!({"text": "hi, Maria here"}),
    )
    .await;
    w.graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    let mut wamid = None;
    for _ in 0..100 {
        let messages = w.messages(&id).await;
        let sent = messages
            .iter()
            .find(|m| m["author"] == "operator" && m["message_id"].is_string());
        if let Some(m) = sent {
            wamid = m["message_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wamid = wamid.expect("the reply was accepted");
    for status in ["delivered", "read"] {
        let body = status_body(&wamid, "15550002005", status);
        assert_eq!(w.server.post_signed(&body).await.status(), 200);
    }
    let messages = w.messages(&id).await;
    let operator = messages.iter().find(|m| m["author"] == "operator").unwrap();
    assert_eq!(operator["status"], "read");
    let inbound = &messages[0];
    assert_eq!(inbound["message_id"], "wamid.tick.1");
}

#[tokio::test]
async fn parts_of_a_reply_not_yet_sent_when_a_person_takes_over_never_go_out() {
    // A reply long enough for two parts.
    let long = format!("{}\n\n{}", "a".repeat(3000), "b".repeat(3000));
    let w = world(|c| c, move |_, _| fake_llm::ollama_says(&long)).await;
    // Meta is slow to accept the first send (and the read receipt, whichever comes first).
    w.graph.script([
        crate::support::fake_graph::Reply::ok().after(Duration::from_millis(1500)),
        crate::support::fake_graph::Reply::ok().after(Duration::from_millis(1500)),
    ]);
    w.customer_says("wamid.parts.1", "15550002006", "tell me everything")
        .await;
    let id = w.conversation_of("15550002006").await;
    assert!(
        eventually(10, || !w.graph.text_sends().is_empty()).await,
        "the first part is on its way"
    );
    let (status, _) = w
        .api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sends = w.graph.text_sends();
    assert_eq!(sends.len(), 1, "the second part never went out");
    assert!(sends[0].body["text"]["body"]
        .as_str()
        .unwrap()
        .starts_with('a'));
    let messages = w.messages(&id).await;
    let parts: Vec<&Value> = messages.iter().filter(|m| m["author"] == "agent").collect();
    assert_eq!(parts.len(), 2, "{messages:?}");
    assert_eq!(parts[1]["status"], "not_sent");
}
