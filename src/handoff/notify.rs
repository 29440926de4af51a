//! `handoff.notify_url`: tell the team (Slack, a CRM) that a conversation waits for a person.
//! Runs in its own task, retried with backoff, so it never holds up a turn or a webhook.

use serde_json::Value as Json;
use std::time::Duration;

use crate::retry::NOTIFY_URL;

pub(super) fn spawn(http: reqwest::Client, url: String, body: Json) {
    tokio::spawn(async move {
        for attempt in 1.. {
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
            match NOTIFY_URL.after(attempt) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => break,
            }
        }
        tracing::error!(url = %crate::config::display_url(&url), "gave up telling handoff.notify_url about a conversation waiting for a person; the console still lists it");
    });
}
