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
use crate::metrics::Metrics;
use crate::runtime::SharedConfig;
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
