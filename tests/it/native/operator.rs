//! Operator replies and the 24-hour window; their parts go through the reply-part path.

use super::*;

fn agent_says(text: &'static str) -> impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply {
    move |request, _| {
        if request.uri.contains("/api/show") {
            return fake_llm::Reply::status(404, json!({"error": "not found"}));
        }
        fake_llm::ollama_says(text)
    }
}

#[tokio::test]
async fn an_operator_reply_outside_the_window_without_a_template_is_refused_with_409() {
    let w = world(|c| c, agent_says("agent answer")).await;
    let user = "15550009201";
    w.says(user, "wamid.op409.1", "hello?", 25 * 3600).await;
    let id = w.conversation(user);
    assert!(eventually(10, || w.llm.count() >= 1).await);
    let (status, body) = w
        .api(
            "POST",
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "sorry for the wait"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "outside_24h_window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.graph.sends().is_empty(), "no Graph call");
}

#[tokio::test]
async fn with_a_template_an_operator_reply_outside_the_window_is_accepted_held_and_sent_after_the_customer_writes(
) {
    let w = world(with_template, agent_says("agent answer")).await;
    let user = "15550009202";
    let id = w.conversation(user);
    w.says(user, "wamid.op202.1", "hello?", 25 * 3600).await;
    // The agent's own reply met the closed window first: one template is out for it.
    let sends = w.graph.wait_for_sends(1, WAIT).await;
    assert_eq!(sends[0].body["type"], "template");
    let (status, _) = w
        .api(
            "POST",
            &format!("/v1/conversations/{id}/handoff"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = w
        .api(
            "POST",
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "Hi, Maria here"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["id"].is_string(), "{body}");
    assert_eq!(body["held"], true, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = w.graph.sends();
    assert_eq!(
        sends.len(),
        1,
        "one template per silence, the reply held: {sends:?}"
    );
    assert_eq!(
        body_without_callback(&sends[0], 0),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
               "type": "template",
               "template": {"name": "hello_again", "language": {"code": "en_US"}}})
    );
    let operator: Vec<Value> = w
        .messages_with(user)
        .await
        .into_iter()
        .filter(|m| m["author"] == "operator")
        .collect();
    assert_eq!(operator[0]["status"], "held", "{operator:?}");

    // The customer writes: the person's reply goes out (the agent stays silent: a person
    // has the conversation).
    w.says(user, "wamid.op202.2", "oh hi", 0).await;
    let sends = w.graph.wait_for_sends(2, WAIT).await;
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!(sends[1].body["text"]["body"], "Hi, Maria here");
    // Through the reply-part path: the send names its part (the negated outbox id).
    let callback = sends[1].body["biz_opaque_callback_data"].as_str().unwrap();
    assert!(
        callback.starts_with("wagate:") && callback.contains(":-") && callback.ends_with(":0"),
        "{callback}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.graph.sends().len(), 2, "sent exactly once");
}

#[tokio::test]
async fn an_operator_reply_inside_the_window_names_its_part_for_exactly_once_delivery() {
    let w = world(|c| c, agent_says("agent answer")).await;
    let user = "15550009203";
    let id = w.conversation(user);
    w.says(user, "wamid.opin.1", "hi", 0).await;
    w.graph.wait_for_sends(1, WAIT).await;
    let (status, body) = w
        .api(
            "POST",
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "a person here"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body.get("held").is_none(), "{body}");
    let sends = w.graph.wait_for_sends(2, WAIT).await;
    let callback = sends[1].body["biz_opaque_callback_data"].as_str().unwrap();
    let outbox_id: i64 = body["id"].as_str().unwrap().parse().unwrap();
    assert!(
        callback.ends_with(&format!(":-{outbox_id}:0")),
        "{callback}"
    );
}
