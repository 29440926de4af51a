//! End to end, in process: a signed webhook in, the production responder (agent runtime and
//! Graph client) in the middle, a fake model and a fake Graph API (real HTTP) at the edges.

use crate::support::fake_graph::{FakeGraph, FakeMedia, Reply, FAKE_TOKEN};
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// The live test app on `model`, its channel edited by `channel`, the model answering `llm`.
async fn world(
    model: &str,
    channel: impl FnOnce(Channel) -> Channel + 'static,
    llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
) -> TestApp {
    TestApp::builder()
        .model(model)
        .channel(channel)
        .llm(llm)
        .start()
        .await
}

fn body_of(send: &crate::support::fake_graph::RecordedRequest) -> String {
    send.body["text"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_customer_message_is_answered_through_the_graph_api() {
    let w = world(
        "llama3.1:8b",
        |c| c,
        |_, _| fake_llm::ollama_says("**Hello** Ana, see [the docs](https://example.com/docs)"),
    )
    .await;
    let response = w
        .server
        .post_signed(&text_body(&[("wamid.e2e.1", "15551230001", "hi there")]))
        .await;
    assert_eq!(response.status(), 200);

    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(sends.len(), 1);
    let send = &sends[0];
    assert_eq!(send.path, format!("/v25.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        send.header("authorization"),
        Some(format!("Bearer {FAKE_TOKEN}").as_str())
    );
    assert_eq!(send.body["to"], "15551230001");
    assert_eq!(send.body["recipient_type"], "individual");
    assert_eq!(send.body["text"]["preview_url"], false);
    assert_eq!(send.body["context"]["message_id"], "wamid.e2e.1");
    assert_eq!(
        body_of(send),
        "*Hello* Ana, see the docs (https://example.com/docs)"
    );

    // The read receipt with typing went out before the reply.
    let receipts: Vec<_> = w
        .graph
        .message_requests()
        .into_iter()
        .filter(|r| r.body["status"] == "read")
        .collect();
    assert_eq!(receipts[0].body["message_id"], "wamid.e2e.1");
    assert_eq!(receipts[0].body["typing_indicator"]["type"], "text");
    assert!(receipts[0].received_at <= send.received_at);

    // The model saw the system prompt and the user's words.
    let messages = fake_llm::messages_of(&w.llm.requests()[0]);
    assert_eq!(messages[0]["role"], "system");
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("whatsapp-assistant"));
    assert_eq!(messages.last().unwrap()["content"], "hi there");

    // Model calls, tokens and latency are counted per provider and model.
    for line in [
        "wagate_model_calls_total{provider=\"ollama\",model=\"llama3.1:8b\",outcome=\"ok\"} 1",
        "wagate_tokens_total{provider=\"ollama\",model=\"llama3.1:8b\",kind=\"prompt\"} 11",
        "wagate_tokens_total{provider=\"ollama\",model=\"llama3.1:8b\",kind=\"completion\"} 7",
        "wagate_model_call_duration_seconds_count{provider=\"ollama\",model=\"llama3.1:8b\"} 1",
        "wagate_graph_sends_total{outcome=\"accepted\",code=\"\"} 1",
    ] {
        assert!(w.server.wait_for_metric(line, 5).await, "missing {line}");
    }
}

#[tokio::test]
async fn an_image_reaches_the_model_as_an_image_downloaded_with_the_token() {
    let w = world("llava:7b", |c| c, |_, _| fake_llm::ollama_says("A cat.")).await;
    let jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes".to_vec();
    w.graph
        .add_media("MEDIA123", FakeMedia::honest("image/jpeg", jpeg.clone()));
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551230002"}],
        "messages": [{"from": "15551230002", "id": "wamid.img.1", "timestamp": "1700000000", "type": "image",
                      "image": {"id": "MEDIA123", "mime_type": "image/jpeg", "sha256": "x", "caption": "what is this?"}}]
    }}]}]});
    assert_eq!(
        w.server
            .post_signed(&serde_json::to_vec(&body).unwrap())
            .await
            .status(),
        200
    );
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(body_of(&sends[0]), "A cat.");

    let media_requests = w.graph.requests_under("/media-download/");
    assert_eq!(media_requests.len(), 1);
    assert_eq!(
        media_requests[0].header("authorization"),
        Some(format!("Bearer {FAKE_TOKEN}").as_str())
    );
    // (An image counts 2,048 tokens, so the model's window is asked first: /api/show.)
    let chat = w
        .llm
        .requests()
        .into_iter()
        .find(|r| r.uri == "/api/chat")
        .expect("a chat request");
    let user = fake_llm::messages_of(&chat).last().cloned().unwrap();
    use base64::Engine;
    assert_eq!(
        user["images"][0],
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    assert!(user["content"].as_str().unwrap().contains("what is this?"));
}

#[tokio::test]
async fn a_long_reply_goes_out_in_order_and_only_the_first_part_quotes() {
    let paragraphs: Vec<String> = (1..=3)
        .map(|i| format!("Paragraph {i}. {}", "word ".repeat(600)))
        .collect();
    let reply = paragraphs.join("\n\n");
    let w = world(
        "llama3.1:8b",
        |c| c,
        move |_, _| fake_llm::ollama_says(&reply),
    )
    .await;
    w.server
        .post_signed(&text_body(&[(
            "wamid.long",
            "15551230003",
            "tell me everything",
        )]))
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(3, Duration::from_secs(10))
        .await;
    assert_eq!(sends.len(), 3);
    for (i, send) in sends.iter().enumerate() {
        let text = body_of(send);
        assert!(text.chars().count() <= 4096);
        assert!(
            text.starts_with(&format!("Paragraph {}.", i + 1)),
            "part {i} out of order"
        );
        assert_eq!(
            send.body.get("context").is_some(),
            i == 0,
            "only the first part quotes"
        );
    }
}

#[tokio::test]
async fn a_graph_500_is_retried_and_the_reply_accepted_once() {
    let w = world("llama3.1:8b", |c| c, |_, _| fake_llm::ollama_says("ok")).await;
    w.graph
        .script([Reply::ok(), Reply::status(500), Reply::status(503)]); // the first answers the read receipt
    w.server
        .post_signed(&text_body(&[("wamid.retry", "15551230004", "hi")]))
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(3, Duration::from_secs(10))
        .await;
    assert_eq!(sends.len(), 3, "two failures, then the accepted send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.graph.text_sends().len(),
        3,
        "nothing sent after Meta accepted it"
    );
    let retried = "wagate_graph_retries_total{operation=\"send_text\",code=\"\"} 2";
    assert!(w.server.wait_for_metric(retried, 5).await);
    assert!(
        w.server
            .wait_for_metric("wagate_rate_limiter_wait_seconds_total", 5)
            .await
    );
}

#[tokio::test]
async fn a_final_graph_error_is_not_retried_and_is_counted_with_its_code() {
    let w = world("llama3.1:8b", |c| c, |_, _| fake_llm::ollama_says("ok")).await;
    w.graph
        .script([Reply::ok(), Reply::graph_error(400, 131047)]);
    w.server
        .post_signed(&text_body(&[("wamid.final", "15551230005", "hi")]))
        .await;
    assert_eq!(
        w.graph
            .wait_for_text_sends(1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    assert!(
        w.server
            .wait_for_metric(
                "wagate_graph_sends_total{outcome=\"final_error\",code=\"131047\"} 1",
                5
            )
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.graph.text_sends().len(),
        1,
        "a final error is never retried"
    );
}

#[tokio::test]
async fn when_every_model_fails_the_customer_gets_the_error_reply() {
    let w = world(
        "llama3.1:8b",
        |c| c.error_reply("We are having trouble, try later."),
        |_, _| fake_llm::Reply::status(500, json!({"error": "model exploded"})),
    )
    .await;
    w.server
        .post_signed(&text_body(&[("wamid.fail", "15551230006", "hi")]))
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(body_of(&sends[0]), "We are having trouble, try later.");
}

#[tokio::test]
async fn several_messages_of_a_burst_become_one_turn_and_one_reply() {
    let w = world(
        "llama3.1:8b",
        |c| c.debounce_ms(300),
        |_, _| fake_llm::ollama_says("got both"),
    )
    .await;
    w.server
        .post_signed(&text_body(&[("wamid.burst.a", "15551230007", "first")]))
        .await;
    w.server
        .post_signed(&text_body(&[("wamid.burst.b", "15551230007", "second")]))
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.graph.text_sends().len(), 1);
    assert_eq!(
        sends[0].body["context"]["message_id"], "wamid.burst.b",
        "the reply quotes the last message"
    );
    let content = fake_llm::messages_of(&w.llm.requests()[0]).last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(content, "first\nsecond");
}

#[tokio::test]
async fn reactions_are_recorded_but_not_answered() {
    let w = world(
        "llama3.1:8b",
        |c| c,
        |_, _| fake_llm::ollama_says("should not happen"),
    )
    .await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": "15551230008", "id": "wamid.react", "timestamp": "1", "type": "reaction",
                      "reaction": {"message_id": "wamid.out", "emoji": "👍"}}]
    }}]}]});
    assert_eq!(
        w.server
            .post_signed(&serde_json::to_vec(&body).unwrap())
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.llm.count(), 0);
    assert!(w.graph.requests().is_empty());
}

#[tokio::test]
async fn a_message_for_a_number_no_agent_serves_is_not_answered_and_others_reply_from_their_number()
{
    let numbers = |c: Channel| c.set("numbers", json!({"200000000000001": ASSISTANT}));
    let w = world("llama3.1:8b", numbers, |_, _| {
        fake_llm::ollama_says("hello")
    })
    .await;
    let to_number = |pnid: &str, id: &str| {
        String::from_utf8(text_body(&[(id, "15551230009", "hi")]))
            .unwrap()
            .replace(PHONE_NUMBER_ID, pnid)
            .into_bytes()
    };
    w.server
        .post_signed(&to_number("300000000000009", "wamid.unknown"))
        .await;
    w.server
        .post_signed(&to_number("200000000000001", "wamid.mapped"))
        .await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.graph.text_sends().len(), 1);
    assert_eq!(
        sends[0].path, "/v25.0/200000000000001/messages",
        "replies go out from the number written to"
    );
    assert_eq!(sends[0].body["context"]["message_id"], "wamid.mapped");
}

#[tokio::test]
async fn dry_run_sends_nothing_to_meta() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("dry")).await;
    let config = ConfigDir::write(
        &Channel::bare(ASSISTANT)
            .set("app_secret", json!(SECRET))
            .set("graph_api_base", json!(graph.base_url())),
        &[Agent::assistant(&llm.url)],
    );
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    server
        .post_signed(&text_body(&[("wamid.dry", "15551230010", "hi")]))
        .await;
    assert!(
        eventually(10, || llm.count() == 1).await,
        "the agent still runs"
    );
    let accepted = "wagate_graph_sends_total{outcome=\"accepted\",code=\"\"} 1";
    assert!(
        server.wait_for_metric(accepted, 5).await,
        "the dry-run reply counts as handed over"
    );
    assert!(graph.requests().is_empty(), "no request left the process");
}

#[tokio::test]
async fn delivery_statuses_update_the_sent_reply_and_never_move_backwards() {
    let w = world("llama3.1:8b", |c| c, |_, _| fake_llm::ollama_says("hello")).await;
    w.server
        .post_signed(&text_body(&[("wamid.status", "15551230011", "hi")]))
        .await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    let db = w.server.data.join("wagate.db");
    let outbound_id = async {
        for _ in 0..100 {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let id: Option<String> = conn
                .query_row("SELECT outbound_id FROM reply_parts", [], |r| r.get(0))
                .unwrap_or(None);
            if let Some(id) = id {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the accepted part was never recorded");
    }
    .await;
    for status in ["read", "delivered", "sent"] {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": outbound_id, "status": status, "timestamp": "1700000001", "recipient_id": "15551230011"}]
        }}]}]});
        assert_eq!(
            w.server
                .post_signed(&serde_json::to_vec(&body).unwrap())
                .await
                .status(),
            200
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let status: String = conn
        .query_row("SELECT status FROM reply_parts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        status, "read",
        "a late `delivered` or `sent` does not undo `read`"
    );
}

#[tokio::test]
async fn parts_of_one_reply_are_paced_but_replies_to_a_busy_user_are_not_held_back() {
    let long = format!("{}\n\n{}", "a ".repeat(2500), "b ".repeat(2500));
    let mut options = crate::support::fake_graph::fast_options();
    options.reply_part_interval = Duration::from_millis(400);
    // The production default for pacing between separate replies.
    options.per_user_interval = wagate::whatsapp::graph::GraphOptions::default().per_user_interval;
    let w = TestApp::builder()
        .graph_options(options)
        .llm(move |request, _| {
            let asked = fake_llm::messages_of(request).last().unwrap()["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if asked == "long" {
                fake_llm::ollama_says(&long)
            } else {
                fake_llm::ollama_says("short")
            }
        })
        .start()
        .await;
    let (graph, server) = (&w.graph, &w.server);

    server
        .post_signed(&text_body(&[("wamid.pace.long", "15551233001", "long")]))
        .await;
    let sends = graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    let gap = sends[1].received_at - sends[0].received_at;
    assert!(
        gap >= Duration::from_millis(350),
        "parts of one reply were {gap:?} apart"
    );

    // Separate short replies to the same user go out as fast as the turns finish.
    let started = std::time::Instant::now();
    for i in 0..3 {
        server
            .post_signed(&text_body(&[(
                &format!("wamid.pace.{i}"),
                "15551233001",
                "hi",
            )]))
            .await;
        graph
            .wait_for_text_sends(3 + i, Duration::from_secs(10))
            .await;
    }
    // A 1 s per-user spacing would take at least 2 s here.
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "took {:?}",
        started.elapsed()
    );
}
