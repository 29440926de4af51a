//! The sending tools through the fake Graph, body by body.

use super::*;
use crate::support::fake_llm::{Recorded, Reply};

/// How many tool results the request carries: the step of the turn the model is at.
pub fn step(request: &Recorded) -> usize {
    fake_llm::messages_of(request)
        .iter()
        .filter(|m| m["role"] == "tool")
        .count()
}

/// A model that makes `calls` one after the other, then answers `text`. `/api/show` is not
/// found (the context window stays the default).
pub fn scripted(
    calls: Vec<(&'static str, Value)>,
    text: &'static str,
) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    move |request, _| {
        if request.uri.contains("/api/show") {
            return Reply::status(404, json!({"error": "not found"}));
        }
        match calls.get(step(request)) {
            Some((name, args)) => fake_llm::ollama_calls(name, args.clone()),
            None => fake_llm::ollama_says(text),
        }
    }
}

#[tokio::test]
async fn every_sending_tool_goes_out_as_metas_exact_request_body_in_the_turns_order_before_the_text(
) {
    let calls = vec![
        ("react", json!({"emoji": "👍"})),
        (
            "reply_buttons",
            json!({"body": "Which size?", "buttons": ["Small", "Medium", "Extra large"]}),
        ),
        (
            "reply_list",
            json!({"body": "Pick a pizza", "button": "Menu", "rows": [
                {"title": "Margherita", "description": "Tomato, mozzarella"},
                {"title": "Diavola", "id": "sku-42"}
            ]}),
        ),
        (
            "send_image",
            json!({"url": "https://example.com/pizza.jpg", "caption": "Our Margherita"}),
        ),
        (
            "send_document",
            json!({"url": "https://example.com/menu.pdf", "caption": "The menu", "filename": "menu.pdf"}),
        ),
        (
            "send_location",
            json!({"latitude": 40.4168, "longitude": -3.7038, "name": "Pizzeria Sol", "address": "Puerta del Sol 1, Madrid"}),
        ),
    ];
    let w = world(|c| c, scripted(calls, "Anything else?")).await;
    let user = "15550009001";
    w.says(user, "wamid.tools.1", "show me everything", 0).await;
    let sends = w.graph.wait_for_sends(7, WAIT).await;
    assert_eq!(sends.len(), 7, "{sends:?}");
    let envelope = |kind: &str, field: &str, content: Value| {
        let mut body = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": user, "type": kind});
        body[field] = content;
        body
    };
    let quoting = |mut body: Value| {
        body["context"] = json!({"message_id": "wamid.tools.1"});
        body
    };
    let expected = [
        // A reaction names its message itself and never quotes.
        envelope(
            "reaction",
            "reaction",
            json!({"message_id": "wamid.tools.1", "emoji": "👍"}),
        ),
        // The first part that may quote the customer's message does.
        quoting(envelope(
            "interactive",
            "interactive",
            json!({"type": "button", "body": {"text": "Which size?"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "small", "title": "Small"}},
                {"type": "reply", "reply": {"id": "medium", "title": "Medium"}},
                {"type": "reply", "reply": {"id": "extra_large", "title": "Extra large"}}
            ]}}),
        )),
        envelope(
            "interactive",
            "interactive",
            json!({"type": "list", "body": {"text": "Pick a pizza"}, "action": {"button": "Menu",
            "sections": [{"rows": [
                {"id": "margherita", "title": "Margherita", "description": "Tomato, mozzarella"},
                {"id": "sku-42", "title": "Diavola"}
            ]}]}}),
        ),
        envelope(
            "image",
            "image",
            json!({"link": "https://example.com/pizza.jpg", "caption": "Our Margherita"}),
        ),
        envelope(
            "document",
            "document",
            json!({"link": "https://example.com/menu.pdf", "caption": "The menu", "filename": "menu.pdf"}),
        ),
        envelope(
            "location",
            "location",
            json!({"latitude": 40.4168, "longitude": -3.7038, "name": "Pizzeria Sol",
                   "address": "Puerta del Sol 1, Madrid"}),
        ),
        envelope(
            "text",
            "text",
            json!({"body": "Anything else?", "preview_url": false}),
        ),
    ];
    for (index, (send, expected)) in sends.iter().zip(expected.iter()).enumerate() {
        assert_eq!(
            &body_without_callback(send, index),
            expected,
            "part {index}"
        );
    }
    // Each part went out once: one more moment shows no repeat.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.graph.sends().len(), 7);
    // The operator view shows each part with its type.
    let out: Vec<(String, String)> = w
        .messages_with(user)
        .await
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_owned(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let kinds: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "reaction",
            "interactive",
            "interactive",
            "image",
            "document",
            "location",
            "text"
        ]
    );
    assert!(out.iter().all(|(_, status)| status == "sent"), "{out:?}");
}

#[tokio::test]
async fn a_tool_call_meta_would_refuse_is_returned_to_the_model_to_fix_and_nothing_is_sent() {
    let calls = vec![
        (
            "reply_buttons",
            json!({"body": "Which size?", "buttons": ["Small", "Medium", "Large", "Huge"]}),
        ),
        (
            "reply_buttons",
            json!({"body": "Which size?", "buttons": ["Small", "Extra large size please"]}),
        ),
        ("send_image", json!({"url": "http://example.com/pizza.jpg"})),
        (
            "reply_buttons",
            json!({"body": "Which size?", "buttons": ["Small", "Large"]}),
        ),
    ];
    let w = world(|c| c, scripted(calls, "")).await;
    w.says("15550009002", "wamid.fix.1", "a pizza please", 0)
        .await;
    w.graph.wait_for_sends(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = w.graph.sends();
    assert_eq!(sends.len(), 1, "only the valid call went out: {sends:?}");
    assert_eq!(
        sends[0].body["interactive"]["action"]["buttons"][1]["reply"]["title"],
        "Large"
    );
    // The model read why each refused call was refused, in its tool results.
    let results: Vec<String> = model_saw(&w.llm, usize::MAX)
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(
        results[0].starts_with("Not sent: 4 buttons given; WhatsApp allows at most 3."),
        "{}",
        results[0]
    );
    assert!(
        results[1].contains("button 2 \"Extra large size please\" has 23 characters")
            && results[1].contains("at most 20")
            && results[1].contains("call `reply_buttons` again"),
        "{}",
        results[1]
    );
    assert!(
        results[2].contains("must start with https://"),
        "{}",
        results[2]
    );
    assert!(results[3].starts_with("Sent:"), "{}", results[3]);
    // The model wrote nothing after the buttons: no empty text and no error_reply.
    assert!(texts(&w.graph).is_empty(), "{:?}", texts(&w.graph));
}

#[tokio::test]
async fn a_tap_on_a_button_comes_back_to_the_agent_as_its_title_and_its_id_is_kept() {
    let w = world(
        |c| c,
        |request, _| {
            if request.uri.contains("/api/show") {
                return Reply::status(404, json!({"error": "not found"}));
            }
            fake_llm::ollama_says("Large it is.")
        },
    )
    .await;
    let user = "15550009003";
    let tap = webhook(
        user,
        "wamid.tap.1",
        0,
        json!({"type": "interactive", "context": {"from": "15550000000", "id": "wamid.fake.1"},
               "interactive": {"type": "button_reply",
                               "button_reply": {"id": "size_large", "title": "Large"}}}),
    );
    assert_eq!(w.server.post_signed(&tap).await.status(), 200);
    let list_tap = webhook(
        user,
        "wamid.tap.2",
        0,
        json!({"type": "interactive", "interactive": {"type": "list_reply",
               "list_reply": {"id": "sku-42", "title": "Diavola", "description": "Spicy"}}}),
    );
    w.graph.wait_for_text_sends(1, WAIT).await;
    assert_eq!(w.server.post_signed(&list_tap).await.status(), 200);
    w.graph.wait_for_text_sends(2, WAIT).await;
    let asked = model_saw(&w.llm, 0);
    assert_eq!(asked.last().unwrap()["content"], "Large");
    let asked = model_saw(&w.llm, usize::MAX);
    assert_eq!(asked.last().unwrap()["content"], "Diavola");
    let taps: Vec<(String, String)> = w
        .messages_with(user)
        .await
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["reply_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        taps,
        [
            ("Large".to_owned(), "size_large".to_owned()),
            ("Diavola".to_owned(), "sku-42".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_agent_remembers_what_it_offered_so_a_later_tap_reads_against_it() {
    let calls = vec![(
        "reply_list",
        json!({"body": "Pick one", "button": "Menu", "rows": [{"title": "Diavola", "id": "sku-42"}]}),
    )];
    let w = world(|c| c, scripted(calls, "")).await;
    let user = "15550009004";
    w.says(user, "wamid.mem.1", "menu?", 0).await;
    w.graph.wait_for_sends(1, WAIT).await;
    let tap = webhook(
        user,
        "wamid.mem.2",
        0,
        json!({"type": "interactive", "interactive": {"type": "list_reply",
               "list_reply": {"id": "sku-42", "title": "Diavola"}}}),
    );
    assert_eq!(w.server.post_signed(&tap).await.status(), 200);
    assert!(
        eventually(10, || w.llm.requests().iter().any(|r| {
            fake_llm::messages_of(r)
                .last()
                .is_some_and(|m| m["content"] == "Diavola")
        }))
        .await
    );
    let request = w
        .llm
        .requests()
        .into_iter()
        .rfind(|r| {
            fake_llm::messages_of(r)
                .last()
                .is_some_and(|m| m["content"] == "Diavola")
        })
        .unwrap();
    let history: Vec<String> = fake_llm::messages_of(&request)
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        history
            .iter()
            .any(|h| h.contains("[list \"Menu\": Diavola (sku-42)]")),
        "{history:?}"
    );
}
