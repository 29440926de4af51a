//! The webhook's HTTP contract: handshake, signatures, status codes, dedupe, the corpus.

use crate::support::*;
use std::time::Duration;

/// A dry run, `channel` applied, whose turns go to a recorder.
async fn server(
    channel: impl FnOnce(Channel) -> Channel + 'static,
) -> (
    TestServer,
    ConfigDir,
    tempfile::TempDir,
    std::sync::Arc<recorder::Recorder>,
) {
    let recorder = recorder::Recorder::new(Duration::ZERO);
    let TestApp {
        server,
        config,
        data,
        ..
    } = TestApp::builder()
        .dry_run()
        .channel(channel)
        .handler(recorder.clone())
        .start()
        .await;
    (server, config, data, recorder)
}

#[tokio::test]
async fn meta_handshake_echoes_the_challenge_as_plain_text() {
    let (server, _c, _d, _r) = server(|c| c).await;
    let url = format!(
        "{WEBHOOK}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    );
    let response = server.get(&url).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "1158201444");
}

#[tokio::test]
async fn handshake_with_a_wrong_token_or_mode_is_forbidden() {
    let (server, _c, _d, _r) = server(|c| c).await;
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "",
    ] {
        let response = server.get(&format!("{WEBHOOK}?{query}")).await;
        assert_eq!(response.status(), 403, "query {query:?}");
    }
}

#[tokio::test]
async fn an_empty_configured_verify_token_never_matches() {
    let config = ConfigDir::write(
        &Channel::bare(ASSISTANT).set("verify_token", serde_json::json!("")),
        &[Agent::assistant("http://127.0.0.1:9")],
    );
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    let response = server
        .get(&format!(
            "{WEBHOOK}?hub.mode=subscribe&hub.verify_token=&hub.challenge=1"
        ))
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_signature_is_refused_and_not_recorded() {
    let (server, _c, _d, recorder) = server(|c| c).await;
    let body = text_body(&[("wamid.sig1", "15551230001", "hello")]);
    assert_eq!(server.post_with_signature(&body, None).await.status(), 401);
    let wrong = wagate::whatsapp::signature::sign(b"another secret", &body);
    assert_eq!(
        server
            .post_with_signature(&body, Some(&wrong))
            .await
            .status(),
        401
    );
    assert_eq!(
        server
            .post_with_signature(&body, Some("sha256=zz"))
            .await
            .status(),
        401
    );
    // The signature covers the exact bytes: one changed byte fails.
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] = b' ';
    assert_eq!(
        server
            .post_with_signature(&tampered, Some(&sign(&body)))
            .await
            .status(),
        401
    );

    assert_eq!(server.post_signed(&body).await.status(), 200);
    assert!(eventually(5, || recorder.message_ids() == ["wamid.sig1"]).await);
}

#[tokio::test]
async fn without_an_app_secret_unsigned_posts_are_accepted() {
    let config = ConfigDir::write(
        &Channel::bare(ASSISTANT),
        &[Agent::assistant("http://127.0.0.1:9")],
    );
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    let body = text_body(&[("wamid.nosig", "15551230001", "hello")]);
    assert_eq!(server.post_with_signature(&body, None).await.status(), 200);
    let ready: serde_json::Value = server.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["signature_check"], false);
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_get_400() {
    let (server, _c, _d, _r) = server(|c| c).await;
    for body in [
        &b"not json"[..],
        b"[]",
        b"42",
        b"\"text\"",
        b"{\"truncated\": ",
        b"",
    ] {
        let response = server.post_signed(body).await;
        assert_eq!(
            response.status(),
            400,
            "body {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let (server, _c, _d, _r) = server(|c| c.set("max_body_bytes", serde_json::json!(1024))).await;
    let body = text_body(&[("wamid.big", "15551230001", &"x".repeat(2000))]);
    assert_eq!(server.post_signed(&body).await.status(), 413);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("wagate_webhooks_total{outcome=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_default_body_limit_is_4_mib() {
    let (server, _c, _d, _r) = server(|c| c).await;
    let big = text_body(&[("wamid.big", "15551230001", &"x".repeat(4 * 1024 * 1024))]);
    assert_eq!(server.post_signed(&big).await.status(), 413);
    let fits = text_body(&[("wamid.fits", "15551230001", &"x".repeat(3 * 1024 * 1024))]);
    assert_eq!(server.post_signed(&fits).await.status(), 200);
}

#[tokio::test]
async fn an_authenticated_object_it_does_not_understand_is_accepted_as_a_dead_letter() {
    let (server, _c, _d, _r) = server(|c| c).await;
    for body in [
        &br#"{}"#[..],
        br#"{"object":"page","entry":[{"changes":[{"field":"feed","value":{}}]}]}"#,
        br#"{"entry":"nonsense"}"#,
    ] {
        assert_eq!(server.post_signed(body).await.status(), 200);
    }
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("wagate_dead_letters_total 3"), "{metrics}");
}

#[tokio::test]
async fn a_redelivered_message_reaches_the_dispatcher_once() {
    let (server, _c, _d, recorder) = server(|c| c).await;
    let body = text_body(&[("wamid.dup", "15551230001", "hello")]);
    for _ in 0..3 {
        assert_eq!(server.post_signed(&body).await.status(), 200);
    }
    // The same id twice in one body, and concurrently.
    let twice = text_body(&[
        ("wamid.dup", "15551230001", "hello"),
        ("wamid.dup", "15551230001", "hello"),
    ]);
    let posts: Vec<_> = (0..16).map(|_| server.post_signed(&twice)).collect();
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), 200);
    }
    assert!(eventually(5, || !recorder.message_ids().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.message_ids(), ["wamid.dup"]);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("wagate_duplicates_dropped_total 34"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_message_of_a_batch_is_recorded_not_just_the_first() {
    let (server, _c, _d, recorder) = server(|c| c).await;
    let body = text_body(&[
        ("wamid.b1", "15551230001", "one"),
        ("wamid.b2", "15551230002", "two"),
        ("wamid.b3", "15551230001", "three"),
    ]);
    assert_eq!(server.post_signed(&body).await.status(), 200);
    assert!(eventually(5, || recorder.message_ids().len() == 3).await);
    let mut ids = recorder.message_ids();
    ids.sort();
    assert_eq!(ids, ["wamid.b1", "wamid.b2", "wamid.b3"]);
}

#[tokio::test]
async fn every_corpus_body_is_accepted_when_signed() {
    let (server, _c, _d, _r) = server(|c| c).await;
    let mut dirs = vec![fixtures_dir()];
    match corpus_dir() {
        Some(dir) => dirs.push(dir),
        None => eprintln!("../shared/corpus not found: replaying the project's fixtures only"),
    }
    let mut replayed = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let body = std::fs::read(&path).unwrap();
                let status = server.post_signed(&body).await.status();
                assert_eq!(status, 200, "{}", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 10, "only {replayed} bodies replayed");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let (server, _c, _d, _r) = server(|c| c).await;
    assert_eq!(server.get("/healthz").await.status(), 200);
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["config_generation"], 1);
    assert_eq!(ready["signature_check"], true);
    assert_eq!(ready["dry_run"], true);
    server
        .post_signed(&text_body(&[("wamid.m", "15551230001", "hi")]))
        .await;
    let metrics = server.get("/metrics").await;
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for name in [
        "wagate_webhooks_total{outcome=\"accepted\"} 1",
        "wagate_messages_recorded_total{state=\"pending\"} 1",
        "# TYPE wagate_duplicates_dropped_total counter",
        "# TYPE wagate_dead_letters_total counter",
        "# TYPE wagate_lanes_waiting gauge",
        "# TYPE wagate_turn_duration_seconds histogram",
        "wagate_inbox_open_messages",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[tokio::test]
async fn the_series_an_alert_uses_are_present_with_zero_before_any_event() {
    let (server, _c, _d, _r) = server(|c| c).await;
    let text = server.get("/metrics").await.text().await.unwrap();
    // deploy/prometheus-alerts.yml and the dashboard: increase() sees the first event only
    // when the series already has a sample, and a panel shows 0 instead of "No data".
    for line in [
        "wagate_webhooks_total{outcome=\"accepted\"} 0",
        "wagate_webhooks_total{outcome=\"unauthorized\"} 0",
        "wagate_webhooks_total{outcome=\"bad_request\"} 0",
        "wagate_webhooks_total{outcome=\"too_large\"} 0",
        "wagate_webhooks_total{outcome=\"unavailable\"} 0",
        "wagate_turns_total{outcome=\"done\"} 0",
        "wagate_turns_total{outcome=\"failed\"} 0",
        "wagate_turns_total{outcome=\"retry_later\"} 0",
        "wagate_turns_claimed_total{by=\"webhook\"} 0",
        "wagate_turns_claimed_total{by=\"close\"} 0",
        "wagate_turns_claimed_total{by=\"dispatcher\"} 0",
        "wagate_graph_sends_total{outcome=\"accepted\",code=\"\"} 0",
        "wagate_graph_sends_total{outcome=\"final_error\",code=\"\"} 0",
        "wagate_config_reloads_total{outcome=\"rejected\"} 0",
        "wagate_handoffs_total{trigger=\"operator\"} 0",
        "wagate_handoffs_total{trigger=\"keyword\"} 0",
        "wagate_handoffs_total{trigger=\"tool\"} 0",
        "wagate_dead_letters_total 0",
        "wagate_duplicates_dropped_total 0",
        "wagate_opt_outs_total 0",
        "wagate_lanes_waiting 0",
        "wagate_config_generation 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_are_served_in_the_text_format_prometheus_accepts() {
    let (server, _c, _d, _r) = server(|c| c).await;
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = metrics.text().await.unwrap();
    // Every sample line is `name{labels} value`, every family has HELP and TYPE, no `# EOF`.
    assert!(!text.contains("# EOF"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        assert!(series.starts_with("wagate_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(text.contains(
        "# HELP wagate_turns_total Turns by outcome (done, failed, retry_later).\n\
         # TYPE wagate_turns_total counter\n"
    ));
}
