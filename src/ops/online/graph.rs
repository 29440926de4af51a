//! The Graph token: `GET /{version}/{phone_number_id}?fields=...` with the bearer token proves
//! the token is valid and can see the business number replies go out from.

use super::{unreachable, CheckLine, Status};
use crate::config::WhatsAppChannel;
use crate::text::display_url;
use serde::Deserialize;
use tokio::task::JoinHandle;

/// One check per business number (`phone_number_id` and every `numbers` key), started now.
pub(super) fn spawn_all(
    client: &reqwest::Client,
    channel: &WhatsAppChannel,
) -> Vec<JoinHandle<CheckLine>> {
    if channel.dry_run() {
        let line = CheckLine::new(
            Status::Skip,
            "graph",
            "dry run (access_token or phone_number_id is empty): nothing is sent, so there is no \
             token to check",
        );
        return vec![tokio::spawn(async move { line })];
    }
    let mut ids: Vec<String> = vec![channel.phone_number_id.clone()];
    for id in channel.numbers.keys() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.into_iter()
        .map(|id| {
            let client = client.clone();
            let base = format!(
                "{}/{}",
                channel.graph_api_base.trim_end_matches('/'),
                channel.graph_api_version
            );
            let token = channel.access_token.clone();
            tokio::spawn(async move { check(&client, &base, &id, token.expose()).await })
        })
        .collect()
}

#[derive(Deserialize)]
struct PhoneNumber {
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    verified_name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

async fn check(client: &reqwest::Client, base: &str, id: &str, token: &str) -> CheckLine {
    let subject = format!("graph phone number id {id} at {}", display_url(base));
    let url = format!("{base}/{id}?fields=id,display_phone_number,verified_name");
    let response = match client.get(&url).bearer_auth(token).send().await {
        Ok(r) => r,
        Err(e) => return CheckLine::new(Status::Fail, subject, unreachable(&e)),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if (200..300).contains(&status) {
        let number: PhoneNumber = serde_json::from_str(&body).unwrap_or(PhoneNumber {
            display_phone_number: None,
            verified_name: None,
        });
        let display = number.display_phone_number.unwrap_or_else(|| "?".into());
        let name = number
            .verified_name
            .map(|n| format!(", verified name {n:?}"))
            .unwrap_or_default();
        return CheckLine::new(
            Status::Ok,
            subject,
            format!("token valid; sending from {display}{name}"),
        );
    }
    let detail = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(ErrorBody { error }) => match error.code {
            190 => "access token expired or invalid (Graph error 190): create a new one (a System \
                    User token from Business Settings does not expire), set \
                    WHATSAPP_ACCESS_TOKEN, then reload or restart wagate"
                .to_string(),
            100 => format!(
                "this token cannot see phone number id {id} (Graph error 100): copy the Phone \
                 number ID from the Meta dashboard, WhatsApp > API Setup, into phone_number_id \
                 (or `numbers`)"
            ),
            code => format!(
                "Graph error {code} (HTTP {status}): {}",
                redact(&error.message, token)
            ),
        },
        Err(_) => format!("HTTP {status} without a Graph error body"),
    };
    CheckLine::new(Status::Fail, subject, detail)
}

/// Meta's messages do not echo the token, but this line is printed: make sure.
fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "[redacted]")
    }
}
