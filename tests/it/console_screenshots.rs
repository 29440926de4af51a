//! The README's screenshots of the console, made from a live server with sample conversations.
//! Ignored in normal runs; `scripts/console-screenshots.sh` runs it and writes `docs/console-*.png`.

use crate::console_browser::{sign_in, ConsoleWorld};
use crate::support::browser::Browser;
use crate::support::fake_graph::Reply;
use crate::support::fake_llm;
use std::path::PathBuf;
use std::time::Duration;

/// Customers of a small shop, what they wrote, and what the model answers them.
const CUSTOMERS: &[(&str, &str, &str)] = &[
    (
        "34611000001",
        "Lucía Fernández",
        "Hi! Do you have the blue linen shirt in size M?",
    ),
    (
        "447700900002",
        "Tom Baker",
        "What time do you open on Saturday?",
    ),
    (
        "15551230003",
        "Priya Raman",
        "My parcel says delivered but it is not here.",
    ),
    ("4915112340004", "Jonas Weber", "Can I pay on delivery?"),
];

fn answer(request: &fake_llm::Recorded) -> String {
    let asked = request.json().to_string();
    let text = if asked.contains("linen shirt") {
        "Yes, the **blue linen shirt** is in stock in M. Shall I reserve one for you?"
    } else if asked.contains("Saturday") {
        "On Saturdays we open from 10:00 to 14:00."
    } else if asked.contains("parcel") {
        "I'm sorry to hear that. Let me pass you to a colleague who can check with the courier."
    } else {
        "Yes, cash or card on delivery both work."
    };
    text.to_string()
}

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/console-*.png; run scripts/console-screenshots.sh"]
async fn console_screenshots() {
    let Some(desktop) = Browser::start((1280, 900)).await else {
        return;
    };
    let w = ConsoleWorld::start_with(
        |c| c.handoff(serde_json::json!({"keywords": ["person please"]})),
        |request, _| fake_llm::ollama_says(&answer(request)),
    )
    .await;
    for (i, (phone, name, text)) in CUSTOMERS.iter().enumerate() {
        w.customer_says(&format!("wamid.shot.{i}"), phone, name, text)
            .await;
    }
    w.graph
        .wait_for_text_sends(CUSTOMERS.len(), Duration::from_secs(20))
        .await;

    // Delivery ticks: Meta's statuses for the agent's replies.
    let db = w.server.data.join("wagate.db");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: Vec<(String, String)> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT p.outbound_id, t.user FROM reply_parts p JOIN turns t ON t.id = p.turn_id
                 WHERE p.outbound_id IS NOT NULL ORDER BY p.turn_id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for (i, (id, user)) in sent.iter().enumerate() {
        let status = if i % 2 == 0 { "read" } else { "delivered" };
        w.status(id, user, status).await;
    }

    // Priya's conversation is with a person now, who has answered once; she wrote again since.
    let priya = w.conversation_id("15551230003").await;
    w.api(
        reqwest::Method::POST,
        &format!("/v1/conversations/{priya}/handoff"),
    )
    .await;
    let reply = w
        .server
        .client
        .post(w.server.url(&format!("/v1/conversations/{priya}/messages")))
        .bearer_auth(crate::console_browser::CONSOLE_TOKEN)
        .json(&serde_json::json!({"text": "Hi Priya, I'm Marta from the team. I've opened a claim with the courier; I'll update you within the hour."}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);
    w.graph
        .wait_for_text_sends(CUSTOMERS.len() + 1, Duration::from_secs(10))
        .await;
    // Meta's timestamps are whole seconds: a second apart, the order is unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.customer_says(
        "wamid.shot.priya.2",
        "15551230003",
        "Priya Raman",
        "Thank you! The tracking number is 1Z999AA10123456784.",
    )
    .await;
    // Tom asks for a person (a `handoff.keywords` match) and waits for one.
    w.customer_says(
        "wamid.shot.tom.2",
        "447700900002",
        "Tom Baker",
        "person please",
    )
    .await;
    w.graph
        .wait_for_text_sends(CUSTOMERS.len() + 2, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The login form.
    desktop
        .client
        .goto(&w.server.url("/console/"))
        .await
        .unwrap();
    desktop.find("#token").await;
    std::fs::create_dir_all(docs("")).unwrap();
    std::fs::write(docs("console-login.png"), desktop.screenshot().await).unwrap();

    // The list and Priya's conversation.
    sign_in(&desktop, &w.server).await;
    desktop
        .client
        .goto(&w.server.url(&format!("/console/#conversation={priya}")))
        .await
        .unwrap();
    desktop.wait_for_text("The tracking number").await;
    desktop.wait_for_text("Live").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(docs("console-conversation.png"), desktop.screenshot().await).unwrap();

    // Meta refuses the answer to Jonas's next question for good: a failed turn to retry.
    w.graph
        .script((0..3).map(|_| Reply::graph_error(400, 131026)));
    w.customer_says(
        "wamid.shot.jonas.2",
        "4915112340004",
        "Jonas Weber",
        "And do you deliver on Sundays?",
    )
    .await;
    let mut failed = false;
    for _ in 0..400 {
        let inbox = w.api(reqwest::Method::GET, "/v1/inbox").await;
        if inbox["failed_turns"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
        {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(failed, "the refused reply never made a failed turn");
    w.graph.clear_script();
    // And Meta reports a message it could not pass on: kept as a dead letter.
    let errors = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": crate::support::PHONE_NUMBER_ID},
        "errors": [{"code": 131051, "title": "Unsupported message type", "message": "Unsupported message type"}]
    }}]}]});
    let response = w
        .server
        .post_signed(&serde_json::to_vec(&errors).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    desktop.find("#tab-problems").await.click().await.unwrap();
    desktop.wait_for_text("Turn ").await;
    desktop.wait_for_text("131051").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(docs("console-problems.png"), desktop.screenshot().await).unwrap();
    desktop.close().await;

    // A phone: the queue of people waiting, then one conversation.
    let Some(phone) = Browser::start((390, 844)).await else {
        return;
    };
    sign_in(&phone, &w.server).await;
    phone.find("#tab-waiting").await.click().await.unwrap();
    phone.wait_for_text("Tom Baker").await;
    std::fs::write(docs("console-phone-queue.png"), phone.screenshot().await).unwrap();
    phone
        .find(&format!("#conversations button[data-id=\"{priya}\"]"))
        .await
        .click()
        .await
        .unwrap();
    phone.wait_for_text("The tracking number").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(docs("console-phone.png"), phone.screenshot().await).unwrap();
    phone.close().await;
}
