//! `handoff.notify_url`: tell the team (Slack, a CRM) that a conversation waits for a person.
//! Runs in its own task, retried with backoff, so it never holds up a turn or a webhook.

use serde_json::Value as Json;
use std::time::Duration;

/// Attempts before giving up (the console still shows the conversation in its queue).
const ATTEMPTS: u32 = 5;

pub(super) fn spawn(http: reqwest::Client, url: String, body: Json, first_backoff: Duration) {
    tokio::spawn(async move {
        let mut backoff = first_backoff;
        for attempt in 1..=ATTEMPTS {
            let sent = http
                .post(&url)
                .timeout(Duration::from_secs(10))
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(attempt, status = %response.status(), url = %crate::config::display_url(&url), "handoff.notify_url answered with an error")
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, url = %crate::config::display_url(&url), "handoff.notify_url unreachable")
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::error!(url = %crate::config::display_url(&url), "gave up telling handoff.notify_url about a conversation waiting for a person; the console still lists it");
    });
}
