//! The channel's `rate_limit` holds for the whole deployment: three replicas together never
//! send more than `max_messages` in any `window_seconds`, and every message is still answered.

use super::*;
use std::collections::BTreeMap;
use std::time::Instant;

/// The most sends Meta saw in any span shorter than `window`, less the delay a send may take
/// between its slot and the fake on a loaded machine. A replica waits for room until the
/// window's edge exactly, so the next batch starts just as the last one leaves the window:
/// if the earlier batch's requests were held up 100 ms more than the later one's (a CI box
/// running the whole suite at once did that), ten arrivals fell within 1.95 s although the
/// slots were taken 2 s apart. A cap that failed would show far denser bursts (every
/// replica's whole batch at once), which this still catches.
fn most_in_any_window(sent_at: &[Instant], window: Duration) -> usize {
    let span = window - Duration::from_millis(300);
    let mut most = 0;
    for (i, start) in sent_at.iter().enumerate() {
        let within = sent_at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < span)
            .count();
        most = most.max(within);
    }
    most
}

#[tokio::test]
async fn three_replicas_together_never_send_more_than_the_channel_rate_limit() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let graph = FakeGraph::start().await;
    let llm = echo_model(Duration::ZERO).await;
    let config = tempfile::tempdir().unwrap();
    write_config(
        config.path(),
        &graph,
        &llm.url,
        "    rate_limit:\n      window_seconds: 2\n      max_messages: 5\n",
    );
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Replica::start(config.path(), &db.url, &[]).await);
    }
    let client = reqwest::Client::new();
    // 18 conversations at once, six through each replica: each alone could send all of its
    // six replies in the first window.
    let mut written = BTreeMap::new();
    let mut posts = Vec::new();
    for u in 0..18 {
        let user = format!("15554{u:05}");
        let text = word(&user, 0);
        let body = text_body(&format!("wamid.{user}.0"), &user, &text);
        let webhook = replicas[u % 3].webhook();
        let client = client.clone();
        posts.push(tokio::spawn(
            async move { post(&client, &webhook, &body).await },
        ));
        written.insert(user, vec![text]);
    }
    for p in posts {
        assert_eq!(p.await.unwrap(), Some(200));
    }
    // 18 replies at 5 per 2 s: about 6 s.
    let all_told = || answered_words(&graph).values().map(Vec::len).sum::<usize>() >= 18;
    assert!(within(60, all_told).await, "every message is answered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(wrong) = check_exactly_once_in_order(&graph, &written) {
        panic!("not exactly once:\n{wrong}");
    }
    let sent_at: Vec<Instant> = graph
        .accepted_sends()
        .iter()
        .map(|(_, s)| s.received_at)
        .collect();
    let most = most_in_any_window(&sent_at, Duration::from_secs(2));
    let offsets: Vec<u128> = sent_at
        .iter()
        .map(|t| t.duration_since(sent_at[0]).as_millis())
        .collect();
    assert!(
        most <= 5,
        "at most 5 sends in any 2 s across the replicas, saw {most} (ms after the first: {offsets:?})"
    );
    drop(replicas);
    drop(db);
}

#[test]
fn the_busiest_window_counts_sends_closer_than_the_window() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let sends = [at(0), at(100), at(1600), at(1800), at(1900), at(4500)];
    assert_eq!(most_in_any_window(&sends, Duration::from_secs(2)), 3);
}
