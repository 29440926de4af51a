//! PostgreSQL restarted under load: while it is down the replicas answer webhooks `503` (Meta
//! redelivers) and `/readyz` `503`, never `200` for a message they could not record; once it
//! is back, everything acknowledged is answered, once and in order. On a cluster of the test's
//! own (`cluster.rs`), never the shared one.

use super::cluster::Cluster;
use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the writers saw.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    other: AtomicUsize,
}

/// `users` customers, each writing `per_user` messages, one every `pause`, alternating between
/// the replicas; a message not answered 200 is sent again (as Meta does) until it is.
fn start_writers(
    webhooks: Vec<String>,
    users: usize,
    per_user: usize,
    pause: Duration,
    seen: Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<(String, Vec<String>)>> {
    (0..users)
        .map(|u| {
            let (webhooks, seen) = (webhooks.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let user = format!("15555{u:05}");
                let mut words = Vec::new();
                let mut attempt = u;
                for n in 0..per_user {
                    let text = word(&user, n);
                    let body = text_body(&format!("wamid.{user}.{n}"), &user, &text);
                    loop {
                        attempt += 1;
                        let webhook = &webhooks[attempt % webhooks.len()];
                        match post(&client, webhook, &body).await {
                            Some(200) => {
                                seen.ok.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Some(503) => seen.unavailable.fetch_add(1, Ordering::Relaxed),
                            _ => seen.other.fetch_add(1, Ordering::Relaxed),
                        };
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    words.push(text);
                    tokio::time::sleep(pause).await;
                }
                (user, words)
            })
        })
        .collect()
}

async fn readyz(client: &reqwest::Client, replica: &Replica) -> Option<u16> {
    client
        .get(replica.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Polls `/readyz` of every replica until each answers `status` (or `secs` pass).
async fn all_ready_say(
    client: &reqwest::Client,
    replicas: &[Replica],
    status: u16,
    secs: u64,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let mut all = true;
        for replica in replicas {
            all &= readyz(client, replica).await == Some(status);
        }
        if all {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn restart_under_load(users: usize, per_user: usize, pause: Duration, outages: usize) {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let db = TestDatabase::create_on(&cluster.url()).await;
    let graph = FakeGraph::start().await;
    let llm = echo_model(Duration::from_millis(20)).await;
    let config = tempfile::tempdir().unwrap();
    write_config(config.path(), &graph, &llm.url, "");
    let replicas = vec![
        Replica::start(config.path(), &db.url, &[]).await,
        Replica::start(config.path(), &db.url, &[]).await,
    ];
    // Like Meta, a status notification for every accepted send (retried until a replica takes
    // it): how a part a replica handed to Meta but could not mark sent (the database went away
    // in between) is settled instead of sent again.
    graph.notify_statuses(replicas[1].webhook(), SECRET.to_owned());
    let client = reqwest::Client::new();
    assert!(all_ready_say(&client, &replicas, 200, 10).await);

    let seen = Arc::new(Seen::default());
    let writers = start_writers(
        replicas.iter().map(Replica::webhook).collect(),
        users,
        per_user,
        pause,
        Arc::clone(&seen),
    );
    for _ in 0..outages {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.stop();
        assert!(
            all_ready_say(&client, &replicas, 503, 15).await,
            "/readyz says 503 while PostgreSQL is down"
        );
        let refused_before = seen.unavailable.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            seen.unavailable.load(Ordering::Relaxed) > refused_before,
            "webhooks are answered 503 while PostgreSQL is down"
        );
        cluster.pg_ctl_start();
        assert!(
            all_ready_say(&client, &replicas, 200, 30).await,
            "/readyz says 200 again once PostgreSQL is back"
        );
    }
    let mut written = BTreeMap::new();
    for writer in writers {
        let (user, words) = writer.await.expect("a writer");
        written.insert(user, words);
    }
    let total: usize = written.values().map(Vec::len).sum();
    assert_eq!(seen.ok.load(Ordering::Relaxed), total);
    let all_told = || answered_words(&graph).values().map(Vec::len).sum::<usize>() >= total;
    assert!(
        within(90, all_told).await,
        "every acknowledged message is answered: {} of {total}",
        answered_words(&graph).values().map(Vec::len).sum::<usize>()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if let Some(wrong) = check_exactly_once_in_order(&graph, &written) {
        panic!("not exactly once in order:\n{wrong}");
    }
    assert_eq!(
        seen.other.load(Ordering::Relaxed),
        0,
        "while PostgreSQL was down the webhook said 503, not another error"
    );
    drop(replicas);
    drop(db);
    drop(cluster);
}

#[tokio::test]
async fn postgres_restarted_under_load_means_503s_meanwhile_and_every_acknowledged_message_answered(
) {
    restart_under_load(10, 12, Duration::from_millis(400), 1).await;
}

#[tokio::test]
#[ignore = "soak: about 2 minutes; .ci/run runs it with --ignored"]
async fn soak_postgres_restarted_three_times_under_load_loses_and_doubles_nothing() {
    restart_under_load(50, 40, Duration::from_millis(250), 3).await;
}
