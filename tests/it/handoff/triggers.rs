//! What moves a conversation to a person and back: a keyword, the agent's tool, the release
//! timer; who is told (`notify_url`, the console's live events).

use super::{world, world_with_agent, TOKEN};
use crate::support::fake_llm;
use crate::support::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn a_keyword_hands_the_conversation_over_without_a_model_call() {
    let handoff = json!({"keywords": ["Agent", "humano"], "message": "A person will reply soon."});
    let w = world(
        move |c| c.handoff(handoff),
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    w.customer_says("wamid.kw.1", "15550003001", "  aGENT ")
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(sends[0].body["text"]["body"], "A person will reply soon.");
    assert_eq!(sends[0].body["to"], "15550003001");
    assert_eq!(w.llm.count(), 0, "no model call");
    let id = w.conversation_of("15550003001").await;
    assert_eq!(w.state_of(&id).await, "human");
    let listed = w.conversations("?state=human").await;
    assert_eq!(listed[0]["handoff"]["trigger"], "keyword");

    // A redelivery of the same message changes nothing and sends nothing more.
    w.customer_says("wamid.kw.1", "15550003001", "  aGENT ")
        .await;
    w.customer_says("wamid.kw.2", "15550003001", "hello?").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.graph.text_sends().len(), 1);
    assert_eq!(w.llm.count(), 0);
    assert!(
        w.server
            .wait_for_metric("wagate_handoffs_total{trigger=\"keyword\"} 1", 5)
            .await
    );
    assert!(
        w.server
            .wait_for_metric("wagate_handoff_waiting_conversations 1", 5)
            .await
    );

    // Only the whole message counts: a sentence with the word in it goes to the agent.
    w.customer_says("wamid.kw.3", "15550003002", "is an agent there?")
        .await;
    w.graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(w.llm.count(), 1);
}

#[tokio::test]
async fn the_agent_tool_hands_over_with_its_reason_and_outside_hours_sends_the_closed_message() {
    // Opening hours in a real zone with no open day: always closed.
    let handoff = json!({
        "hours": {"timezone": "Europe/Madrid", "days": {"mon": "", "sun": ""}},
        "closed_message": "We are closed; we will reply tomorrow."
    });
    let tools = |a: Agent| a.builtins(&["handoff_to_human"]);
    let w = world_with_agent(
        move |c| c.handoff(handoff),
        tools,
        |_, _| fake_llm::ollama_calls("handoff_to_human", json!({"reason": "wants a refund"})),
    )
    .await;
    w.customer_says("wamid.tool.1", "15550003003", "I want my money back")
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(
        sends[0].body["text"]["body"],
        "We are closed; we will reply tomorrow."
    );
    assert_eq!(w.llm.count(), 1, "the loop stops at the handoff");
    let offered = &w.llm.requests()[0].json()["tools"];
    assert!(
        offered.to_string().contains("handoff_to_human"),
        "{offered}"
    );

    let id = w.conversation_of("15550003003").await;
    let listed = w.conversations("?state=human").await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["handoff"]["trigger"], "tool");
    assert_eq!(listed[0]["handoff"]["reason"], "wants a refund");

    // No further agent turn.
    w.customer_says("wamid.tool.2", "15550003003", "hello?")
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.llm.count(), 1);
    assert!(
        w.server
            .wait_for_metric("wagate_handoffs_total{trigger=\"tool\"} 1", 5)
            .await
    );
}

#[tokio::test]
async fn without_an_operator_reply_the_conversation_goes_back_to_the_agent() {
    let handoff = json!({"release_after_seconds": 1});
    let w = world(
        move |c| c.handoff(handoff),
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    w.customer_says("wamid.rel.1", "15550003004", "hi").await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    let id = w.conversation_of("15550003004").await;
    w.api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(w.state_of(&id).await, "human");
    // The release is timed by the server's clock: move it past the timeout instead of waiting.
    w.advance_clock(Duration::from_secs(2));
    let mut back = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if w.state_of(&id).await == "agent" {
            back = true;
            break;
        }
    }
    assert!(back, "released after release_after_seconds");
    assert!(
        w.server
            .wait_for_metric("wagate_handoff_releases_total{trigger=\"timeout\"} 1", 5)
            .await
    );
}

/// A webhook receiver standing in for Slack or a CRM.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = Arc::clone(&seen);
            move |axum::Json(body): axum::Json<Value>| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(body);
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn the_team_is_notified_when_a_conversation_starts_waiting_for_a_person() {
    let (url, seen) = receiver().await;
    let handoff = json!({"keywords": ["person"], "notify_url": url});
    let w = world(
        move |c| c.handoff(handoff),
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    w.customer_says("wamid.nt.1", "15550003005", "person").await;
    assert!(eventually(10, || !seen.lock().unwrap().is_empty()).await);
    let id = w.conversation_of("15550003005").await;
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["conversation"]["id"], id.as_str());
    assert_eq!(body["conversation"]["user"], "15550003005");
    assert_eq!(body["trigger"], "keyword");
    assert!(
        body["console_url"].as_str().unwrap().contains(&id),
        "{body}"
    );
}

#[tokio::test]
async fn the_event_stream_shows_new_messages_and_state_changes() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("agent answer")).await;
    let mut stream = w
        .server
        .client
        .get(w.server.url("/v1/events"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !text.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .expect("event in time")
                .unwrap()
                .expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("event: ready", &mut text).await;
    w.customer_says("wamid.ev.1", "15550003006", "hi").await;
    read_until("event: message", &mut text).await;
    let id = w.conversation_of("15550003006").await;
    assert!(text.contains(&id), "{text}");
    // The agent's reply shows up too.
    read_until("\"author\":\"agent\"", &mut text).await;
    w.api_post(&format!("/v1/conversations/{id}/handoff"), json!({}))
        .await;
    read_until("event: conversation", &mut text).await;
    assert!(text.contains("\"state\":\"human\""), "{text}");
}

#[tokio::test]
async fn an_open_event_stream_does_not_hold_up_a_graceful_stop() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("agent answer")).await;
    let mut stream = w
        .server
        .client
        .get(w.server.url("/v1/events"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("ready"));
    let started = std::time::Instant::now();
    w.server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failing_notify_url_is_tried_again() {
    let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let calls = Arc::clone(&calls);
            move |axum::Json(body): axum::Json<Value>| {
                let calls = Arc::clone(&calls);
                async move {
                    let mut calls = calls.lock().unwrap();
                    calls.push(body);
                    // Down the first time, up the second.
                    if calls.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let handoff = json!({"keywords": ["person"], "notify_url": url});
    let w = world(
        move |c| c.handoff(handoff),
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    w.customer_says("wamid.nt.2", "15550003007", "Person").await;
    // The notice went out at once, whatever the hook does.
    assert_eq!(
        w.graph
            .wait_for_text_sends(1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    assert!(eventually(10, || calls.lock().unwrap().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        calls.lock().unwrap().len(),
        2,
        "not again once it succeeded"
    );
}
