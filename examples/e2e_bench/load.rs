//! The open-loop load: pre-signed webhooks posted at a fixed rate, whatever the server does.
//!
//! Bodies are built and signed before the clock starts so the pacer only sleeps and spawns.
//! The pacer sleeps with `std::thread::sleep` (tens of µs of granularity; tokio's timer has
//! 1 ms) and each POST runs on a small tokio runtime.

use super::server::{APP_SECRET, PHONE_NUMBER_ID};
use super::tally::{tag_of, Stage, Tally, ID_PREFIX};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wagate::whatsapp::signature;

/// One signed webhook: the `X-Hub-Signature-256` value and the raw body.
pub struct Signed {
    pub signature: String,
    pub body: Bytes,
}

/// The webhook of message `i`: a text from its user, with a PII-looking e-mail address for the
/// guardrails to redact and the letters-only tag the fake model reads back.
pub fn build(tally: &Tally) -> Vec<Signed> {
    (0..tally.messages())
        .map(|i| {
            let from = tally.user_of(i);
            let text = format!(
                "Hi, my parcel has not arrived yet ({}). Can you check? Write to me at customer{}@example.com",
                tag_of(i),
                i % 97
            );
            let webhook = wagate::simulate::text_webhook(
                PHONE_NUMBER_ID,
                &from,
                "Bench Customer",
                &text,
                &format!("{ID_PREFIX}{i}"),
            );
            let body = serde_json::to_vec(&webhook).expect("a JSON body");
            Signed {
                signature: signature::sign(APP_SECRET.as_bytes(), &body),
                body: Bytes::from(body),
            }
        })
        .collect()
}

/// When message `i` is due.
pub fn scheduled(start: Instant, rate: f64, i: usize) -> Instant {
    start + Duration::from_secs_f64(i as f64 / rate)
}

/// Posts every webhook at its scheduled instant, to each of `urls` in turn (several replicas
/// behind a round-robin balancer); returns the pacer's worst lateness (how far behind schedule
/// a POST was spawned, which would make the load lighter than asked).
pub fn run(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    urls: &[String],
    webhooks: Vec<Signed>,
    tally: &Arc<Tally>,
    start: Instant,
    rate: f64,
) -> Duration {
    let mut worst_lateness = Duration::ZERO;
    let mut handles = Vec::with_capacity(webhooks.len());
    for (i, webhook) in webhooks.into_iter().enumerate() {
        let due = scheduled(start, rate, i);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            worst_lateness = worst_lateness.max(now - due);
        }
        let url = urls[i % urls.len()].clone();
        let (client, tally) = (client.clone(), Arc::clone(tally));
        handles.push(runtime.spawn(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", webhook.signature)
                .body(webhook.body)
                .send()
                .await;
            tally.mark(Stage::WebhookAnswered, i, Instant::now());
            if let Ok(r) = &response {
                tally.webhook_status(r.status().as_u16());
            }
            let counter = match &response {
                Ok(r) if r.status() == 200 => &tally.webhook_ok,
                Ok(_) => &tally.webhook_rejected,
                Err(_) => &tally.webhook_errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    }
    runtime.block_on(async {
        for handle in handles {
            let _ = handle.await;
        }
    });
    worst_lateness
}
