//! The operator API (`/v1/conversations...`, `/v1/events`) and the console's login. Off, every
//! route `404`, while `console.token` is empty; otherwise a bearer token or the console's
//! session cookie is required (`auth`). Handlers translate HTTP to calls on the handoff service
//! and the store, and back.

pub mod auth;
mod events;
pub mod login;

use crate::handoff::{conversation_id, parse_conversation_id, HandoffError, Trigger};
use crate::http::{ApiError, AppState};
use crate::inbox::store::Holder;
use crate::inbox::LaneKey;
use auth::Operator;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

/// The operator routes, merged into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/conversations", get(list))
        .route("/v1/conversations/{id}/messages", get(messages).post(reply))
        .route("/v1/conversations/{id}/handoff", post(handoff))
        .route("/v1/conversations/{id}/release", post(release))
        .route("/v1/events", get(events::stream))
        .route("/console/login", get(login::page).post(login::login))
        .route("/console/logout", post(login::logout))
}

/// Unix ms as RFC 3339 (UTC, milliseconds).
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "operator API: store error");
    ApiError::Internal
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

/// `GET /v1/conversations[?state=human|agent]`: most recent first.
async fn list(
    _: Operator,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Json_>, ApiError> {
    let only = match query.state.as_deref() {
        None | Some("") => None,
        Some("human") => Some(Holder::Human),
        Some("agent") => Some(Holder::Agent),
        Some(_) => return Err(ApiError::BadRequest("`state` must be `human` or `agent`")),
    };
    let rows = state
        .store
        .conversations(only == Some(Holder::Human))
        .await
        .map_err(internal)?;
    let conversations: Vec<Json_> = rows
        .into_iter()
        .filter(|row| only.is_none_or(|h| row.holder == h))
        .map(|row| {
            let handoff = state.handoff.human_info(&row.lane).map(|h| {
                json!({
                    "since": rfc3339(h.since),
                    "trigger": h.trigger,
                    "reason": h.reason,
                    "waiting": crate::handoff::is_waiting(&h),
                })
            });
            json!({
                "id": conversation_id(&row.lane),
                "phone_number_id": row.lane.phone_number_id,
                "user": row.lane.user,
                "contact_name": row.contact_name,
                "state": row.holder.as_str(),
                "last_message_at": rfc3339(row.last_message_at),
                "opted_out": row.opted_out,
                "handoff": handoff,
            })
        })
        .collect();
    Ok(Json(json!({ "conversations": conversations })))
}

/// The conversation an id names; `404` when it is not one or nobody ever wrote in it.
async fn known(state: &AppState, id: &str) -> Result<LaneKey, ApiError> {
    let lane = parse_conversation_id(id).ok_or(ApiError::NotFound)?;
    let last = state
        .store
        .last_customer_timestamp(lane.clone())
        .await
        .map_err(internal)?;
    last.map(|_| lane).ok_or(ApiError::NotFound)
}

/// `GET /v1/conversations/{id}/messages`: oldest first.
async fn messages(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let lane = parse_conversation_id(&id).ok_or(ApiError::NotFound)?;
    let rows = state
        .store
        .conversation_messages(lane.clone())
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound)?;
    let reactions = state.store.reactions(lane).await.map_err(internal)?;
    let messages: Vec<Json_> = rows
        .into_iter()
        .map(|m| {
            // The customer's current emoji on this message, if any.
            let reaction = m.message_id.as_deref().and_then(|id| {
                reactions
                    .iter()
                    .find(|r| r.target_id == id)
                    .map(|r| r.emoji.as_str())
            });
            json!({
                "direction": if m.inbound { "in" } else { "out" },
                "author": m.author,
                "type": m.kind,
                "text": m.text,
                "at": rfc3339(m.at),
                "status": m.status,
                "message_id": m.message_id,
                "reply_id": m.reply_id,
                "error": m.error,
                "reaction": reaction,
            })
        })
        .collect();
    Ok(Json(json!({ "messages": messages })))
}

fn conversation_json(state: &AppState, lane: &LaneKey, changed: bool) -> Json<Json_> {
    let holder = if state.handoff.is_human(lane) {
        "human"
    } else {
        "agent"
    };
    Json(json!({"id": conversation_id(lane), "state": holder, "changed": changed}))
}

/// `POST /v1/conversations/{id}/handoff`: to a person. Idempotent.
async fn handoff(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let lane = known(&state, &id).await?;
    let changed = state
        .handoff
        .take_over(&lane, Trigger::Operator, None, Vec::new())
        .await
        .map_err(internal)?;
    Ok(conversation_json(&state, &lane, changed))
}

/// `POST /v1/conversations/{id}/release`: back to the agent. Idempotent.
async fn release(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let lane = known(&state, &id).await?;
    let changed = state
        .handoff
        .release(&lane, crate::metrics::ReleaseTrigger::Operator)
        .await
        .map_err(internal)?;
    Ok(conversation_json(&state, &lane, changed))
}

#[derive(Deserialize)]
pub struct Reply {
    text: String,
}

/// `POST /v1/conversations/{id}/messages`: a person's reply, `202 {"id"}`; outside the 24-hour
/// window `409`, or with `window.reopen_template` set `202 {"id", "held": true}` (the template
/// goes out and the reply waits for the customer).
async fn reply(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Reply>,
) -> Result<(StatusCode, Json<Json_>), ApiError> {
    let lane = parse_conversation_id(&id).ok_or(ApiError::NotFound)?;
    match state.handoff.reply(&lane, &body.text).await {
        Ok(reply) => {
            let mut answer = json!({ "id": reply.id.to_string() });
            if reply.held {
                // Outside the 24-hour window: the reopen template goes out, the reply waits.
                answer["held"] = json!(true);
                answer["reason"] = json!(crate::whatsapp::window::OUTSIDE_WINDOW);
            }
            Ok((StatusCode::ACCEPTED, Json(answer)))
        }
        Err(HandoffError::UnknownConversation) => Err(ApiError::NotFound),
        Err(HandoffError::EmptyReply) => Err(ApiError::BadRequest("`text` is empty")),
        Err(e @ HandoffError::OutsideWindow) => Err(ApiError::Conflict {
            code: "outside_24h_window",
            reason: e.to_string(),
        }),
        Err(e @ HandoffError::OptedOut) => Err(ApiError::Conflict {
            code: "opted_out",
            reason: e.to_string(),
        }),
        Err(HandoffError::Store(e)) => Err(internal(e)),
    }
}
