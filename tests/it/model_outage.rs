//! A turn in which no model answered: the customer is sent `error_reply`, and the turn is
//! recorded as failed, so `wagate inbox` lists it, `wagate retry` re-runs it and `/metrics`
//! counts it (the `WagateTurnsFailing` alert reads that counter).

use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use wagate::ops::inbox::{report, InboxOptions};

#[tokio::test]
async fn a_turn_no_model_answered_is_failed_listed_retryable_and_counted() {
    let graph = FakeGraph::start().await;
    let llm =
        FakeServer::start(|_, _| fake_llm::Reply::status(500, json!({"error": "model exploded"})))
            .await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| {
        c.error_reply("We are having trouble, try later.")
    });
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    server
        .post_signed(&text_body(&[("wamid.outage", "15551230099", "hi")]))
        .await;
    let sends = graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert_eq!(
        sends[0].body["text"]["body"],
        "We are having trouble, try later."
    );
    assert!(
        server
            .wait_for_metric("wagate_turns_total{outcome=\"failed\"} 1", 10)
            .await,
        "the turn is counted as failed"
    );

    let options = InboxOptions {
        all: false,
        limit: 10,
        show_body: false,
        show_numbers: false,
    };
    let inbox = report(data.path(), &options).expect("inbox report");
    let failed: Vec<_> = inbox
        .turn_list
        .iter()
        .filter(|t| t.state == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", inbox.turn_list);
    let error = failed[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("model exploded") && error.contains("ollama/llama3.1:8b"),
        "{error}"
    );
    let requeued = wagate::ops::retry::retry(data.path(), failed[0].id, false)
        .expect("a turn no model answered can be retried without --force");
    assert_eq!(requeued.messages, 1);
    server.stop().await;
}
