//! `GET /v1/inbox` and `POST /v1/turns/{id}/retry`: the console's view of failed turns and dead
//! letters, and its retry button. They call the same functions as `wagate inbox` and
//! `wagate retry` (one home for that SQL: `ops`), on the server's own database, then wake the
//! dispatcher so a re-queued turn is answered now instead of at the next inbox scan.

use crate::http::operator::auth::Operator;
use crate::http::AppState;
use crate::ops::inbox::{report, InboxOptions};
use crate::ops::{retry, OpsError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Most failed turns and dead letters listed (the CLI shows more with `--limit`).
const LIST_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum InboxRouteError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("the inbox query did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl IntoResponse for InboxRouteError {
    fn into_response(self) -> Response {
        let status = match &self {
            InboxRouteError::Ops(OpsError::TurnNotFound(_)) => StatusCode::NOT_FOUND,
            InboxRouteError::Ops(
                OpsError::TurnNotFailed { .. }
                | OpsError::NothingToRequeue(_)
                | OpsError::PartlyAnswered { .. },
            ) => StatusCode::CONFLICT,
            _ => {
                tracing::error!(error = %self, "console inbox route failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(serde_json::json!({"error": "internal error; see the server log"})),
                )
                    .into_response();
            }
        };
        (status, Json(serde_json::json!({"error": self.to_string()}))).into_response()
    }
}

/// `GET /v1/inbox`.
#[derive(Debug, Serialize)]
pub struct InboxView {
    /// Failed turns, newest first: a model or Graph failure the customer may still be owed an
    /// answer for.
    pub failed_turns: Vec<FailedTurn>,
    /// Webhook bodies that could not be understood, newest first (reasons only, never bodies).
    pub dead_letters: Vec<DeadLetterView>,
    /// Messages waiting for a turn, and the age of the oldest, as `/metrics` reports them.
    pub open_messages: i64,
    pub oldest_unanswered_age_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct FailedTurn {
    pub id: i64,
    pub phone_number_id: String,
    pub user: String,
    pub messages: i64,
    pub attempts: i64,
    pub started_at: String,
    pub error: Option<String>,
    pub reply_parts: i64,
    pub reply_parts_sent: i64,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterView {
    pub id: i64,
    pub received_at: String,
    pub reason: String,
}

fn data_dir(state: &AppState) -> PathBuf {
    state
        .store
        .path()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub async fn list(
    _: Operator,
    State(state): State<AppState>,
) -> Result<Json<InboxView>, InboxRouteError> {
    let dir = data_dir(&state);
    let options = InboxOptions {
        all: false,
        limit: LIST_LIMIT,
        show_body: false,
        // The console is behind the operator's token; operators answer these people.
        show_numbers: true,
    };
    let r = tokio::task::spawn_blocking(move || report(&dir, &options)).await??;
    let open_messages = ["pending", "taken"]
        .iter()
        .map(|s| r.messages.get(*s).copied().unwrap_or(0))
        .sum();
    Ok(Json(InboxView {
        failed_turns: r
            .turn_list
            .into_iter()
            .filter(|t| t.state == "failed")
            .map(|t| FailedTurn {
                id: t.id,
                phone_number_id: t.phone_number_id,
                user: t.conversation,
                messages: t.messages,
                attempts: t.attempts,
                started_at: t.started_at,
                error: t.error,
                reply_parts: t.reply_parts,
                reply_parts_sent: t.reply_parts_sent,
            })
            .collect(),
        dead_letters: r
            .dead_letter_list
            .into_iter()
            .map(|d| DeadLetterView {
                id: d.id,
                received_at: d.received_at,
                reason: d.reason,
            })
            .collect(),
        open_messages,
        oldest_unanswered_age_seconds: r.oldest_unanswered_age_seconds,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct RetryQuery {
    /// Re-queue even when Meta accepted part of the old reply (`wagate retry --force`).
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/turns/{id}/retry`: `200 {"turn_id","messages","parts_already_sent"}`; `404` for an
/// unknown turn; `409` for one that is not failed or was partly answered (`?force=true` to
/// re-queue anyway).
pub async fn retry_turn(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<RetryQuery>,
) -> Result<Json<serde_json::Value>, InboxRouteError> {
    let dir = data_dir(&state);
    let done = tokio::task::spawn_blocking(move || retry::retry(&dir, id, query.force)).await??;
    tracing::info!(
        turn = id,
        messages = done.messages,
        "operator re-queued a failed turn"
    );
    // Answer now rather than at the next periodic inbox scan.
    if let Err(e) = state.dispatcher.resume().await {
        tracing::warn!(error = %e, "inbox scan after a retry failed; the periodic scan will pick it up");
    }
    Ok(Json(serde_json::json!({
        "turn_id": done.turn_id,
        "messages": done.messages,
        "parts_already_sent": done.parts_already_sent,
    })))
}
