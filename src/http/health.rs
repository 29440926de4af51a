//! `/healthz`, `/readyz`, `/metrics`.

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::time::Duration;

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: config loaded and a write to the database would succeed (the file is the one opened,
/// neither it nor its directory read-only, the writer answering). The body says what an
/// operator wants to know at a glance, and why when not ready.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let writable = database_writable(&state).await;
    let db_ok = writable.is_ok() && refresh_backlog(&state).await;
    let status_text = match &writable {
        Ok(()) if db_ok => "ready".to_owned(),
        Ok(()) => "database unavailable".to_owned(),
        Err(reason) => format!("database not writable: {reason}"),
    };
    let loaded = state.config.current();
    let channel = &loaded.config.whatsapp;
    let body = serde_json::json!({
        "status": status_text,
        "config_generation": loaded.generation,
        "config_loaded_at": loaded.loaded_at.to_rfc3339(),
        "signature_check": !channel.app_secret.is_empty(),
        "dry_run": channel.dry_run(),
        "inbox_open_messages": state.metrics.inbox_open_messages.get(),
    });
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_backlog(&state).await;
    state.handoff.refresh_metrics();
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Whether a write would succeed now; the reason when not (logged too: the operator must act).
async fn database_writable(state: &AppState) -> Result<(), String> {
    let reason = match tokio::time::timeout(Duration::from_secs(2), state.store.writable()).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(crate::inbox::StoreError::NotWritable(reason))) => reason,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the database writer did not answer within 2 s".to_owned(),
    };
    tracing::error!(reason = %reason, "not ready: the database would not accept writes");
    Err(reason)
}

/// Read the inbox depth into the gauges; `false` when the database does not answer in time.
async fn refresh_backlog(state: &AppState) -> bool {
    match tokio::time::timeout(Duration::from_secs(2), state.store.backlog()).await {
        Ok(Ok(backlog)) => {
            let age = backlog
                .oldest_received_at
                .map(|t| ((chrono::Utc::now().timestamp_millis() - t).max(0) as f64) / 1000.0)
                .unwrap_or(0.0);
            state
                .metrics
                .inbox_open_messages
                .set(backlog.open_messages as i64);
            state.metrics.inbox_oldest_pending_age_seconds.set(age);
            true
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "database check failed");
            false
        }
        Err(_) => {
            tracing::error!("database check timed out");
            false
        }
    }
}
