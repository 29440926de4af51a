//! `wagate simulate`: post a Meta-shaped text message webhook to a running server, the way Meta
//! would, so a newcomer sees the whole path without a WhatsApp account.

use crate::whatsapp::signature;
use anyhow::Context;
use std::process::ExitCode;

/// A webhook body for one text message, shaped exactly like Meta's.
pub fn text_webhook(
    phone_number_id: &str,
    from: &str,
    name: &str,
    text: &str,
    message_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "0",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
                    "contacts": [{"profile": {"name": name}, "wa_id": from}],
                    "messages": [{
                        "from": from,
                        "id": message_id,
                        "timestamp": chrono::Utc::now().timestamp().to_string(),
                        "type": "text",
                        "text": {"body": text}
                    }]
                }
            }]
        }]
    })
}

/// The webhook URL of a server listening on `listen` (`WAGATE_LISTEN`), as `healthcheck`
/// finds `/healthz`.
pub fn default_url(listen: Option<&str>) -> String {
    format!(
        "{}/v1/channels/whatsapp/webhook",
        crate::ops::healthcheck::local_base_url(listen)
    )
}

pub fn run(
    url: &str,
    from: &str,
    name: &str,
    phone_number_id: &str,
    text: &str,
) -> anyhow::Result<ExitCode> {
    let message_id = format!("wamid.simulated.{}", uuid_like());
    let body = serde_json::to_vec(&text_webhook(
        phone_number_id,
        from,
        name,
        text,
        &message_id,
    ))?;
    let secret = std::env::var("WHATSAPP_APP_SECRET").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if !secret.is_empty() {
            request = request.header(
                "x-hub-signature-256",
                signature::sign(secret.as_bytes(), &body),
            );
        }
        request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}: is `wagate serve` running?"))
    })?;
    let code = status.status();
    println!(
        "{} {}",
        code.as_u16(),
        code.canonical_reason().unwrap_or("")
    );
    Ok(if code.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}
