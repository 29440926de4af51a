//! The channel-wide message cap and per-user spacing: sends over the cap wait and are all
//! delivered; spacing one user's parts never holds up other users.

use crate::support::fake_graph::{fast_options, FakeGraph, FAKE_PHONE_NUMBER_ID};
use std::time::Duration;
use wagate::config::RateLimit;
use wagate::whatsapp::graph::GraphClient;

#[tokio::test]
async fn the_channel_cap_delays_sends_but_delivers_every_one() {
    let fake = FakeGraph::start().await;
    let mut channel = fake.channel();
    channel.rate_limit = RateLimit {
        window_seconds: 1,
        max_messages: 2,
    };
    let graph = GraphClient::with_options(&channel, fast_options()).expect("client");

    let sends: Vec<_> = (0..5)
        .map(|n| {
            let graph = graph.clone();
            tokio::spawn(async move {
                let to = format!("3460000000{n}");
                graph
                    .send_text(FAKE_PHONE_NUMBER_ID, &to, &format!("part {n}"), None)
                    .await
            })
        })
        .collect();
    for send in sends {
        send.await.expect("task").expect("sent");
    }

    let received = fake.text_sends();
    assert_eq!(
        received.len(),
        5,
        "every message is delivered, none dropped"
    );
    let first = received.iter().map(|r| r.received_at).min().expect("some");
    let last = received.iter().map(|r| r.received_at).max().expect("some");
    // A rolling window of 2 per second: sends 1-2 at once, 3-4 a second later, the fifth two
    // seconds after the first.
    assert!(
        last - first >= Duration::from_millis(1900),
        "spread {:?}",
        last - first
    );
    assert!(graph.pacing_wait_total() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn parts_to_the_same_user_are_spaced_by_the_per_user_interval() {
    let fake = FakeGraph::start().await;
    let mut options = fast_options();
    options.per_user_interval = Duration::from_millis(300);
    let graph = GraphClient::with_options(&fake.channel(), options).expect("client");

    for part in ["one", "two", "three"] {
        graph
            .send_text(FAKE_PHONE_NUMBER_ID, "34600111222", part, None)
            .await
            .expect("sent");
    }

    let received = fake.text_sends();
    assert_eq!(received.len(), 3);
    for pair in received.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(
            gap >= Duration::from_millis(290),
            "parts only {gap:?} apart"
        );
    }
}

#[tokio::test]
async fn spacing_one_users_parts_does_not_hold_up_other_users() {
    let fake = FakeGraph::start().await;
    let mut options = fast_options();
    options.per_user_interval = Duration::from_secs(2);
    let graph = GraphClient::with_options(&fake.channel(), options).expect("client");

    graph
        .send_text(FAKE_PHONE_NUMBER_ID, "34600000001", "a1", None)
        .await
        .expect("sent");
    let second_to_a = {
        let graph = graph.clone();
        tokio::spawn(async move {
            graph
                .send_text(FAKE_PHONE_NUMBER_ID, "34600000001", "a2", None)
                .await
        })
    };
    graph
        .send_text(FAKE_PHONE_NUMBER_ID, "34600000002", "b1", None)
        .await
        .expect("sent");
    second_to_a.await.expect("task").expect("sent");

    let order: Vec<String> = fake
        .text_sends()
        .iter()
        .map(|r| {
            r.body["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(order, ["a1", "b1", "a2"], "b1 did not wait behind a2");
    let sends = fake.text_sends();
    assert!(sends[2].received_at - sends[0].received_at >= Duration::from_millis(1950));
}
