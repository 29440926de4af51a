//! Sending text and read receipts through the Graph client, against a fake Graph over real HTTP:
//! request shapes, error parsing, and which failures are retried.

use crate::support::fake_graph::{
    fast_options, FakeGraph, Reply, FAKE_PHONE_NUMBER_ID, FAKE_TOKEN, FAKE_VERSION,
};
use serde_json::json;
use std::time::Duration;
use wagate::whatsapp::graph::{GraphClient, GraphError, GraphOptions, RetryPolicy};

const USER: &str = "34600111222";

fn client(fake: &FakeGraph) -> GraphClient {
    GraphClient::with_options(&fake.channel(), fast_options()).expect("client")
}

fn client_with(fake: &FakeGraph, options: GraphOptions) -> GraphClient {
    GraphClient::with_options(&fake.channel(), options).expect("client")
}

#[tokio::test]
async fn a_reply_is_posted_to_the_business_numbers_messages_endpoint_with_the_bearer_token() {
    let fake = FakeGraph::start().await;
    let sent = client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "Hola *mundo*", None)
        .await
        .expect("sent");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/{FAKE_VERSION}/{FAKE_PHONE_NUMBER_ID}/messages")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {FAKE_TOKEN}").as_str())
    );
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": USER,
            "type": "text",
            "text": { "body": "Hola *mundo*", "preview_url": false },
        })
    );
    assert_eq!(sent.id, "wamid.fake.1");
}

#[tokio::test]
async fn a_quoted_reply_carries_the_inbound_message_id_as_context() {
    let fake = FakeGraph::start().await;
    client(&fake)
        .send_text(
            FAKE_PHONE_NUMBER_ID,
            USER,
            "first part",
            Some("wamid.INBOUND=="),
        )
        .await
        .expect("sent");
    let body = &fake.requests()[0].body;
    assert_eq!(body["context"], json!({ "message_id": "wamid.INBOUND==" }));
    assert_eq!(body["text"]["preview_url"], json!(false));
}

#[tokio::test]
async fn mark_read_sends_the_read_status_with_the_typing_indicator_only_when_asked() {
    let fake = FakeGraph::start().await;
    let graph = client(&fake);
    graph
        .mark_read(FAKE_PHONE_NUMBER_ID, "wamid.IN1", true)
        .await
        .expect("marked read with typing");
    graph
        .mark_read(FAKE_PHONE_NUMBER_ID, "wamid.IN2", false)
        .await
        .expect("marked read");

    let requests = fake.message_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body,
        json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.IN1",
            "typing_indicator": { "type": "text" },
        })
    );
    assert_eq!(
        requests[1].body,
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2" })
    );
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {FAKE_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_graph_error_is_parsed_into_code_subcode_details_and_trace_id() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::status(400).with_body(json!({
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_subcode": 2494010,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed"
            },
            "fbtrace_id": "AbCdEf123"
        }
    }))]);
    let err = client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "late", None)
        .await
        .expect_err("outside the 24-hour window");

    let api = err.api().expect("a Graph error");
    assert_eq!(api.http_status, 400);
    assert_eq!(api.code, Some(131047));
    assert_eq!(api.subcode, Some(2494010));
    assert_eq!(api.kind.as_deref(), Some("OAuthException"));
    assert_eq!(api.message, "(#131047) Re-engagement message");
    assert_eq!(
        api.details.as_deref(),
        Some("Message failed to send because more than 24 hours have passed")
    );
    assert_eq!(api.fbtrace_id.as_deref(), Some("AbCdEf123"));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_server_error_is_retried_until_the_send_succeeds() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::status(500), Reply::status(503), Reply::ok()]);
    let sent = client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("sent on the third attempt");
    assert_eq!(fake.text_sends().len(), 3);
    assert_eq!(sent.id, "wamid.fake.1");
}

#[tokio::test]
async fn a_429_waits_for_retry_after_before_trying_again() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::graph_error(429, 4).with_header("Retry-After", "1")]);
    client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("sent after waiting");
    let sends = fake.text_sends();
    assert_eq!(sends.len(), 2);
    let gap = sends[1].received_at - sends[0].received_at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test]
async fn throttling_and_transient_codes_are_retried() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::graph_error(500, 131000),
        Reply::graph_error(400, 130429),
        Reply::graph_error(400, 131053),
    ]);
    client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("sent on the fourth attempt");
    assert_eq!(fake.text_sends().len(), 4);
}

#[tokio::test]
async fn final_errors_are_returned_after_exactly_one_request() {
    for code in [131047, 131026, 100, 190] {
        let fake = FakeGraph::start().await;
        let status = if code == 190 { 401 } else { 400 };
        fake.script([Reply::graph_error(status, code), Reply::ok()]);
        let err = client(&fake)
            .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
            .await
            .expect_err("a final error");
        assert_eq!(err.code(), Some(code));
        assert_eq!(fake.text_sends().len(), 1, "code {code} was retried");
    }
}

#[tokio::test]
async fn an_unknown_client_error_is_not_retried() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::status(403), Reply::ok()]);
    let err = client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("403 is final");
    assert_eq!(err.api().map(|e| e.http_status), Some(403));
    assert_eq!(fake.text_sends().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_bound_and_return_the_last_error() {
    let fake = FakeGraph::start().await;
    fake.script((0..10).map(|_| Reply::status(500)));
    let mut options = fast_options();
    options.retry.max_attempts = 3;
    let err = client_with(&fake, options)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("still failing");
    assert_eq!(err.api().map(|e| e.http_status), Some(500));
    assert_eq!(fake.text_sends().len(), 3);
}

#[tokio::test]
async fn retries_stop_when_the_time_budget_would_be_exceeded() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::graph_error(429, 4).with_header("Retry-After", "30"),
        Reply::ok(),
    ]);
    let mut options = fast_options();
    options.retry.total_budget = Duration::from_secs(5);
    let err = client_with(&fake, options)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("Meta asked for more than the budget");
    assert_eq!(err.code(), Some(4));
    assert_eq!(fake.text_sends().len(), 1);
}

#[tokio::test]
async fn a_send_that_times_out_is_retried() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::ok().after(Duration::from_secs(3)), Reply::ok()]);
    let mut options = fast_options();
    options.send_timeout = Duration::from_millis(300);
    let sent = client_with(&fake, options)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("sent on the second attempt");
    assert_eq!(fake.text_sends().len(), 2);
    // The first answer (wamid.fake.1) came too late; the client returns the retry's id.
    assert_eq!(sent.id, "wamid.fake.2");
}

#[tokio::test]
async fn the_pair_rate_limit_backs_off_at_least_the_configured_pair_delay() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::graph_error(400, 131056)]);
    let mut options = fast_options();
    options.retry.pair_rate_limit_delay = Duration::from_millis(400);
    client_with(&fake, options)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("sent after backing off");
    let sends = fake.text_sends();
    assert_eq!(sends.len(), 2);
    let gap = sends[1].received_at - sends[0].received_at;
    assert!(gap >= Duration::from_millis(390), "retried after {gap:?}");
}

#[tokio::test]
async fn a_failing_read_receipt_is_retried_at_most_once() {
    let fake = FakeGraph::start().await;
    fake.script((0..5).map(|_| Reply::status(500)));
    let result = client(&fake)
        .mark_read(FAKE_PHONE_NUMBER_ID, "wamid.IN", true)
        .await;
    assert!(result.is_err());
    assert_eq!(fake.message_requests().len(), 2);
}

#[tokio::test]
async fn an_unreachable_graph_gives_a_retryable_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = listener.local_addr().expect("addr").port();
    drop(listener);
    let fake = FakeGraph::start().await;
    let mut channel = fake.channel();
    channel.graph_api_base = format!("http://127.0.0.1:{closed_port}");
    let mut options = fast_options();
    options.retry = RetryPolicy {
        max_attempts: 2,
        ..options.retry
    };
    let err = GraphClient::with_options(&channel, options)
        .expect("client")
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, GraphError::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_id_that_would_change_the_url_path_is_refused_without_a_request() {
    let fake = FakeGraph::start().await;
    let err = client(&fake)
        .send_text("../../oauth/access_token", USER, "hello", None)
        .await
        .expect_err("refused");
    assert!(matches!(err, GraphError::InvalidRequest(_)), "{err:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_success_without_a_message_id_is_reported_and_not_resent() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::ok().with_body(json!({ "messaging_product": "whatsapp" }))]);
    let err = client(&fake)
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("no id to record");
    assert!(matches!(err, GraphError::BadResponse { .. }), "{err:?}");
    assert_eq!(fake.text_sends().len(), 1);
}
