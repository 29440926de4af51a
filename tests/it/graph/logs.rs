//! What the Graph client writes to the log: dry run shows each reply (and sends nothing);
//! live sends never put message text, phone numbers or the token in info-level logs, and an
//! expired token tells the operator what to do.

use crate::support::fake_graph::{
    fast_options, FakeGraph, FakeMedia, Reply, FAKE_PHONE_NUMBER_ID, FAKE_TOKEN,
};
use std::sync::{Arc, Mutex};
use wagate::whatsapp::graph::{GraphClient, MediaError};

const USER: &str = "34600111222";

/// Log lines written while the guard lives, at info level and above.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn dry_run_logs_each_reply_with_recipient_and_text_and_sends_nothing() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let fake = FakeGraph::start().await;
    fake.add_media("777", FakeMedia::honest("image/jpeg", vec![1; 10]));
    let graph = GraphClient::with_options(&fake.dry_run_channel(), fast_options()).expect("client");
    assert!(graph.is_dry_run());

    let first = graph
        .send_text(
            FAKE_PHONE_NUMBER_ID,
            USER,
            "Your order ships today",
            Some("wamid.IN"),
        )
        .await
        .expect("dry-run send");
    let second = graph
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "Anything else?", None)
        .await
        .expect("dry-run send");
    graph
        .mark_read(FAKE_PHONE_NUMBER_ID, "wamid.IN", true)
        .await
        .expect("dry-run mark read");
    let media = graph.fetch_media("777", 1024).await;

    assert!(fake.requests().is_empty(), "a request left the process");
    assert!(first.id.starts_with("dryrun."), "{}", first.id);
    assert_ne!(first.id, second.id);
    assert!(matches!(media, Err(MediaError::DryRun)));
    let logged = logs.text();
    assert_eq!(logged.matches("outbound_dry_run").count(), 2, "{logged}");
    assert!(logged.contains("Your order ships today"), "{logged}");
    assert!(logged.contains(USER), "{logged}");
}

#[tokio::test]
async fn an_empty_phone_number_id_also_means_dry_run() {
    let fake = FakeGraph::start().await;
    let mut channel = fake.channel();
    channel.phone_number_id.clear();
    let graph = GraphClient::with_options(&channel, fast_options()).expect("client");
    assert!(graph.is_dry_run());
    graph
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect("dry-run send");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn live_sends_keep_text_numbers_and_token_out_of_info_logs() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::status(500),
        Reply::ok(),
        Reply::graph_error(400, 131047),
    ]);
    let graph = GraphClient::with_options(&fake.channel(), fast_options()).expect("client");

    graph
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "secret plans for friday", None)
        .await
        .expect("sent after a retry");
    let err = graph
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "secret plans for friday", None)
        .await
        .expect_err("outside the window");

    let logged = logs.text();
    assert!(
        logged.contains("131047"),
        "the final code is logged: {logged}"
    );
    assert!(logged.contains("retrying"), "the retry is logged: {logged}");
    for private in [USER, "secret plans", FAKE_TOKEN] {
        assert!(
            !logged.contains(private),
            "{private:?} leaked into: {logged}"
        );
        assert!(
            !format!("{err} {err:?}").contains(private),
            "{private:?} in the error"
        );
    }
}

#[tokio::test]
async fn an_expired_token_logs_an_error_telling_the_operator_what_to_do() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let fake = FakeGraph::start().await;
    fake.script([Reply::graph_error(401, 190)]);
    let graph = GraphClient::with_options(&fake.channel(), fast_options()).expect("client");

    let err = graph
        .send_text(FAKE_PHONE_NUMBER_ID, USER, "hello", None)
        .await
        .expect_err("token rejected");

    assert_eq!(err.code(), Some(190));
    let logged = logs.text();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(logged.contains("WHATSAPP_ACCESS_TOKEN"), "{logged}");
    assert!(!logged.contains(FAKE_TOKEN), "{logged}");
}
