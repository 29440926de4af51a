//! `GET /v1/inbox`, `POST /v1/turns/{id}/retry` and `POST /v1/dead-letters/{id}/retry`: the
//! console's view of failed turns and dead letters, and their retry buttons. The reports and the
//! re-queue are the store's, as for `wagate inbox` and `wagate retry`, but through the server's
//! own store (its read connection and its one writer); a re-queued turn wakes the dispatcher so
//! it is answered now instead of at the next inbox scan. A dead letter is retried by recording
//! its body again exactly as a webhook is: what today's wagate understands of it is answered.

use crate::http::operator::auth::Operator;
use crate::http::webhook::{ingest, Refused};
use crate::http::AppState;
use crate::inbox::StoreError;
use crate::ops::inbox::{report_from, InboxOptions};
use crate::ops::{retry, OpsError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Most failed turns and dead letters listed (the CLI shows more with `--limit`).
const LIST_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum InboxRouteError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no dead letter {0}")]
    DeadLetterNotFound(i64),
    #[error("the inbox cannot record it now; try again")]
    Unavailable,
}

impl IntoResponse for InboxRouteError {
    fn into_response(self) -> Response {
        let status = match &self {
            InboxRouteError::Ops(OpsError::TurnNotFound(_))
            | InboxRouteError::DeadLetterNotFound(_) => StatusCode::NOT_FOUND,
            InboxRouteError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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

pub async fn list(
    _: Operator,
    State(state): State<AppState>,
) -> Result<Json<InboxView>, InboxRouteError> {
    let options = InboxOptions {
        all: false,
        limit: LIST_LIMIT,
        show_body: false,
        // The console is behind the operator's token; operators answer these people.
        show_numbers: true,
    };
    let snapshot = state
        .store
        .inbox_snapshot(options.limit, options.all)
        .await?;
    let r = report_from(snapshot, state.store.path(), &options);
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
    let requeue = state.store.requeue_turn(id, query.force).await?;
    let done = retry::outcome(id, requeue)?;
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

/// `POST /v1/dead-letters/{id}/retry`: the body recorded again as a webhook would be (after an
/// upgrade or a config change, what is understood now is answered). `200 {"recorded",
/// "duplicates", "still_dead"}`: `still_dead` when part of it is still not understood (it is
/// then the newest dead letter, with today's reason); `404` for an unknown dead letter.
pub async fn retry_dead_letter(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, InboxRouteError> {
    let letter = state
        .store
        .dead_letter(id)
        .await?
        .ok_or(InboxRouteError::DeadLetterNotFound(id))?;
    let outcome = match ingest(&state, letter.body.as_bytes(), Some(id)).await {
        Ok(outcome) => outcome,
        Err(Refused::Unavailable) => return Err(InboxRouteError::Unavailable),
        Err(Refused::NotAnObject(reason)) => {
            // Never recorded as a dead letter (a webhook like it gets 400), so never here.
            tracing::warn!(
                dead_letter = id,
                reason,
                "dead letter body is not a JSON object"
            );
            return Err(InboxRouteError::Unavailable);
        }
    };
    tracing::info!(
        dead_letter = id,
        recorded = outcome.new_pending_messages + outcome.new_skipped,
        still_dead = outcome.new_dead_letters > 0,
        "operator retried a dead letter"
    );
    Ok(Json(serde_json::json!({
        "recorded": outcome.new_pending_messages + outcome.new_skipped,
        "duplicates": outcome.duplicates,
        "still_dead": outcome.new_dead_letters > 0,
    })))
}
