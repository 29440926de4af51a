//! Meta's webhook: the GET handshake and the signed POST.
//!
//! The POST path is: signature over the raw bytes (before any parsing, because Meta signs the
//! exact bytes it sent and any re-serialisation breaks the check) → tolerant parse → one
//! durable record of everything in the body → 200. The answer goes out only after the commit,
//! so a crash after the 200 loses nothing; the agent runs later, in the dispatcher.

use super::{raw_json, ApiError, AppState};
use crate::config::WhatsAppChannel;
use crate::inbox::{Batch, InboundState, LaneKey, NewInbound, RecordOutcome, StatusUpdate};
use crate::metrics::{RecordedLabels, RecordedState, WebhookOutcome};
use crate::whatsapp::payload::{self, PayloadError, Webhook};
use crate::whatsapp::signature;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use serde::Deserialize;
use subtle::ConstantTimeEq;

mod preferences;

#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET`: Meta proves it knows the verify token; we echo the challenge. Never behind the
/// signature check (Meta does not sign GETs).
pub async fn handshake(
    State(state): State<AppState>,
    query: Result<Query<Handshake>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Ok(Query(query)) = query else {
        return Err(ApiError::Forbidden);
    };
    let config = state.config.current();
    let expected = config.config.whatsapp.verify_token.expose().as_bytes();
    let given = query.verify_token.as_deref().unwrap_or("").as_bytes();
    // An empty configured token must never match, not even an empty `hub.verify_token`.
    let token_ok = !expected.is_empty() && bool::from(expected.ct_eq(given));
    if query.mode.as_deref() != Some("subscribe") || !token_ok {
        tracing::warn!(mode = ?query.mode, "webhook verification refused: wrong hub.mode or verify token");
        return Err(ApiError::Forbidden);
    }
    tracing::info!("webhook verified by Meta");
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        query.challenge.unwrap_or_default(),
    ))
}

/// `POST`: a signed notification. 401 bad signature, 400 not a JSON object, 413 too large
/// (by the body limit layer), 503 when the inbox cannot record it (Meta redelivers), else 200.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let config = state.config.current();
    let channel = &config.config.whatsapp;
    let metrics = &state.metrics;

    if !channel.app_secret.is_empty() {
        let header = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if let Err(e) = signature::verify(channel.app_secret.expose().as_bytes(), &body, header) {
            metrics.webhook(WebhookOutcome::Unauthorized);
            tracing::warn!(reason = %e, "webhook refused: signature check failed");
            return Err(ApiError::Unauthorized);
        }
    }

    match ingest(&state, &body, None).await {
        Ok(_) => {
            metrics.webhook(WebhookOutcome::Accepted);
            Ok("")
        }
        Err(Refused::NotAnObject(reason)) => {
            metrics.webhook(WebhookOutcome::BadRequest);
            Err(ApiError::BadRequest(reason))
        }
        Err(Refused::Unavailable) => {
            metrics.webhook(WebhookOutcome::Unavailable);
            Err(ApiError::Unavailable)
        }
    }
}

/// Why a body was not recorded.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Not a JSON object: nothing in it can be understood, now or later.
    NotAnObject(&'static str),
    /// The inbox could not commit it: nothing is promised, the sender should try again.
    Unavailable,
}

/// An authenticated body, recorded: parsed tolerantly, everything in it kept (messages,
/// statuses, a dead letter for what is not understood), the turns it calls for started. The
/// webhook's POST, and the console's retry of a dead letter (`replaces_dead_letter`: that row
/// is deleted in the same commit, so a body still not understood stays one dead letter).
pub(crate) async fn ingest(
    state: &AppState,
    body: &[u8],
    replaces_dead_letter: Option<i64>,
) -> Result<RecordOutcome, Refused> {
    let config = state.config.current();
    let channel = &config.config.whatsapp;
    let metrics = &state.metrics;
    let webhook = match payload::parse(body) {
        Ok(webhook) => webhook,
        Err(e) => {
            tracing::warn!(reason = %e, "webhook refused: body is not a JSON object");
            return Err(Refused::NotAnObject(match e {
                PayloadError::NotJson(_) => "body is not JSON",
                PayloadError::NotAnObject => "body is not a JSON object",
            }));
        }
    };

    let answers_reactions = |number: &str| config.config.answers_reactions(number);
    let mut batch = to_batch(
        webhook,
        channel,
        &answers_reactions,
        body,
        raw_json::message_texts(body),
    );
    batch.replaces_dead_letter = replaces_dead_letter;
    // Opt-out and resume keywords, then handoff keywords; the console's live view.
    state.handoff.mark_opt_keywords(&mut batch, channel);
    state.handoff.mark_keywords(&mut batch, channel);
    let (seen_lanes, status_ids) = event_subjects(state, &batch);
    let (statuses, dead_letters) = (batch.statuses.len(), batch.dead_letters.len());
    let outcome = match state.dispatcher.accept(batch).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "webhook not recorded; answering 503 so Meta redelivers");
            return Err(Refused::Unavailable);
        }
    };

    state.handoff.after_intake(&outcome, &seen_lanes);
    state.handoff.statuses_recorded(status_ids);
    if outcome.new_pending_messages > 0 {
        metrics
            .messages_recorded
            .get_or_create(&RecordedLabels {
                state: RecordedState::Pending,
            })
            .inc_by(outcome.new_pending_messages as u64);
    }
    if outcome.new_skipped > 0 {
        metrics
            .messages_recorded
            .get_or_create(&RecordedLabels {
                state: RecordedState::Skipped,
            })
            .inc_by(outcome.new_skipped as u64);
    }
    if outcome.duplicates > 0 {
        metrics.duplicates_dropped.inc_by(outcome.duplicates as u64);
        tracing::debug!(
            duplicates = outcome.duplicates,
            "redelivered messages dropped"
        );
    }
    if statuses > 0 {
        metrics.statuses_recorded.inc_by(statuses as u64);
    }
    if dead_letters > 0 {
        metrics.dead_letters.inc_by(dead_letters as u64);
    }
    Ok(outcome)
}

/// The conversations with new messages and the messages with new statuses, for the console's
/// live events (nothing when no console listens).
fn event_subjects(state: &AppState, batch: &Batch) -> (Vec<LaneKey>, Vec<String>) {
    if !state.handoff.events.has_listeners() {
        return (Vec::new(), Vec::new());
    }
    let mut lanes: Vec<LaneKey> = Vec::new();
    for m in &batch.messages {
        if !lanes.contains(&m.lane) {
            lanes.push(m.lane.clone());
        }
    }
    let statuses = batch
        .statuses
        .iter()
        .map(|s| s.message_id.clone())
        .collect();
    (lanes, statuses)
}

/// Everything the body carries, as the store records it. Nothing is dropped silently: what
/// cannot be routed or is not understood becomes a dead letter with its reason. The parsed
/// messages move into the batch (`NewInbound::json`), so a turn started by this webhook's commit
/// does not parse them again; their text is stored as Meta sent it (`texts`, per change) when
/// it pairs up with the parsed messages.
fn to_batch(
    webhook: Webhook,
    channel: &WhatsAppChannel,
    answers_reactions: &dyn Fn(&str) -> bool,
    body: &[u8],
    texts: Option<Vec<Vec<&str>>>,
) -> Batch {
    let mut batch = Batch::default();
    let mut unhandled: Vec<String> = Vec::new();
    let no_changes = webhook.changes.is_empty();

    for (index, mut change) in webhook.changes.into_iter().enumerate() {
        let messages = std::mem::take(&mut change.messages);
        // The texts of this change, when they pair up one to one with the parsed messages.
        let change_texts = texts
            .as_ref()
            .and_then(|t| t.get(index))
            .filter(|t| t.len() == messages.len());
        if change.field == payload::USER_PREFERENCES_FIELD {
            preferences::record(&change, &mut batch, &mut unhandled);
            continue;
        }
        if change.field != "messages" {
            unhandled.push(format!("field `{}` is not handled", change.field));
            continue;
        }
        let Some(metadata) = change
            .metadata
            .as_ref()
            .filter(|m| !m.phone_number_id.is_empty())
        else {
            if !messages.is_empty() {
                unhandled.push("messages without metadata.phone_number_id".into());
            }
            continue;
        };
        for (position, message) in messages.into_iter().enumerate() {
            let Some(user) = message.sender() else {
                unhandled.push(format!("message {} has no sender", message.id));
                continue;
            };
            if message.id.is_empty() {
                unhandled.push("message without an id".into());
                continue;
            }
            let (state, note) = initial_state(
                channel,
                answers_reactions,
                &metadata.phone_number_id,
                &message.kind_name,
            );
            batch.messages.push(NewInbound {
                lane: LaneKey {
                    phone_number_id: metadata.phone_number_id.clone(),
                    user: user.to_string(),
                },
                display_phone_number: metadata.display_phone_number.clone(),
                contact_name: change.contact_name_for(&message).map(str::to_string),
                timestamp: message.timestamp,
                raw: change_texts
                    .map(|t| t[position])
                    .filter(|text| text.contains(message.id.as_str()))
                    .map_or_else(|| message.raw.to_string(), str::to_string),
                message_id: message.id,
                kind: message.kind_name,
                json: Some(message.raw),
                state,
                note,
            });
        }
        for status in &change.statuses {
            batch.statuses.push(StatusUpdate {
                message_id: status.id.clone(),
                recipient: status.recipient_id.clone(),
                status: status.status.as_str().to_string(),
                rank: i64::from(status.status.rank()),
                errors: (!status.errors.is_empty()).then(|| {
                    status
                        .raw
                        .get("errors")
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                }),
                pricing: status.raw.get("pricing").map(|p| p.to_string()),
                callback_data: status.callback_data.clone(),
            });
        }
        if !change.errors.is_empty() {
            unhandled.push(format!(
                "webhook errors: {}",
                describe_errors(&change.errors)
            ));
        }
    }
    if no_changes {
        unhandled.push("no entry with changes".into());
    }
    if !unhandled.is_empty() {
        unhandled.dedup();
        tracing::info!(reasons = %unhandled.join("; "), "webhook content kept as a dead letter");
        batch.dead_letters.push((
            unhandled.join("; "),
            String::from_utf8_lossy(body).into_owned(),
        ));
    }
    batch
}

/// Reactions are kept on record but not answered (unless the agent wants them: the store then
/// keeps only emoji on our own messages); so are messages to a number no agent serves.
fn initial_state(
    channel: &WhatsAppChannel,
    answers_reactions: &dyn Fn(&str) -> bool,
    phone_number_id: &str,
    kind: &str,
) -> (InboundState, Option<String>) {
    if channel.agent_for_number(phone_number_id).is_none() {
        tracing::warn!(
            phone_number_id,
            "message for a business number that `numbers` does not list; not answered"
        );
        return (
            InboundState::Skipped,
            Some(format!(
                "number {phone_number_id} is not served by any agent"
            )),
        );
    }
    if kind == "reaction" && !answers_reactions(phone_number_id) {
        return (
            InboundState::Skipped,
            Some("reactions are recorded, not answered".into()),
        );
    }
    (InboundState::Pending, None)
}

fn describe_errors(errors: &[payload::WebhookError]) -> String {
    errors
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e.code.map(|c| c.to_string()).unwrap_or_default(),
                e.title.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> WhatsAppChannel {
        serde_yaml::from_str("default_agent: bench").expect("a minimal channel")
    }

    fn batch_of(body: &[u8]) -> Batch {
        let webhook = payload::parse(body).expect("parses");
        to_batch(
            webhook,
            &channel(),
            &|_| false,
            body,
            raw_json::message_texts(body),
        )
    }

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"messages","value":{"metadata":{"phone_number_id":"PN","display_phone_number":"1"},
         "contacts":[{"wa_id":"u1","profile":{"name":"Ana"}}],
         "messages":[{"from":"u1", "id":"wamid.A","timestamp":"1","type":"text","text":{"body":"ol\u00e1"}}]}}]}]}"#;

    #[test]
    fn a_message_is_stored_as_the_text_meta_sent() {
        let batch = batch_of(BODY);
        assert_eq!(
            batch.messages[0].raw,
            r#"{"from":"u1", "id":"wamid.A","timestamp":"1","type":"text","text":{"body":"ol\u00e1"}}"#
        );
        let parsed = batch.messages[0].json.as_ref().expect("the parsed message");
        assert_eq!(parsed["text"]["body"], "olá");
        assert_eq!(batch.messages[0].contact_name.as_deref(), Some("Ana"));
    }

    #[test]
    fn without_the_sent_text_the_parsed_message_is_stored() {
        let webhook = payload::parse(BODY).expect("parses");
        let batch = to_batch(webhook, &channel(), &|_| false, BODY, None);
        let stored: serde_json::Value = serde_json::from_str(&batch.messages[0].raw).unwrap();
        assert_eq!(stored["text"]["body"], "olá");
    }

    #[test]
    fn messages_without_a_business_number_become_a_dead_letter() {
        let body = br#"{"entry":[{"changes":[{"field":"messages","value":{
            "messages":[{"from":"u1","id":"wamid.B","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let batch = batch_of(body);
        assert!(batch.messages.is_empty());
        assert!(batch.dead_letters[0]
            .0
            .contains("messages without metadata.phone_number_id"));
    }
}
