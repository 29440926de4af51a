//! The HTTP surface: Meta's webhook (handshake and signed POST), health and metrics, and the
//! operator API with the console's login (`operator`). Nothing else lives here: handlers translate HTTP to calls on the inbox and back.

mod error;
mod health;
pub mod operator;
mod raw_json;
pub(crate) mod webhook;

pub use error::ApiError;

use crate::handoff::Handoff;
use crate::inbox::{Dispatcher, Store};
use crate::live_config::SharedConfig;
use crate::metrics::Metrics;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The webhook path Meta's callback URL points at.
pub const WEBHOOK_PATH: &str = "/v1/channels/whatsapp/webhook";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: SharedConfig,
    pub store: Store,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    /// Human handoff: conversation state, operator replies, the console's live events.
    pub handoff: Arc<Handoff>,
}

/// Counts the webhook POSTs refused with 413 as `wagate_webhooks_total{outcome="too_large"}`:
/// the body limit answers them before the router (see [`crate::net::with_body_deadline`]), so
/// this layer goes around that one.
pub fn count_refused_webhooks(app: Router, metrics: Arc<Metrics>) -> Router {
    app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let metrics = Arc::clone(&metrics);
            async move {
                let webhook = request.method() == axum::http::Method::POST
                    && request.uri().path() == WEBHOOK_PATH;
                let response = next.run(request).await;
                if webhook && response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    metrics.webhook(crate::metrics::WebhookOutcome::TooLarge);
                }
                response
            }
        },
    ))
}

/// The router. `max_body_bytes` is fixed at start (a reload does not resize it).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route(
            WEBHOOK_PATH,
            get(webhook::handshake)
                .post(webhook::receive)
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(operator::routes())
        .merge(crate::console::routes())
        .with_state(state)
}
