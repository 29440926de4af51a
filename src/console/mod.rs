//! The operator console at `/console/`: a login form without a session, the console with one.
//! The page is static and embedded in the binary ([`assets`]); its script talks to the JSON
//! operator API (`/v1/conversations...`, `/v1/events`) with the session cookie, and to the two
//! routes of [`inbox`] for failed turns and dead letters.
//!
//! Like the operator API, everything here answers `404` while `console.token` is empty.

mod assets;
mod inbox;

use crate::http::operator::auth::Operator;
use crate::http::{ApiError, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// The console's routes, merged into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(to_console))
        .route("/console/", get(page))
        .route("/console/console.css", get(stylesheet))
        .route("/console/console.js", get(script))
        .route("/v1/inbox", get(inbox::list))
        .route("/v1/turns/{id}/retry", post(inbox::retry_turn))
        .route(
            "/v1/dead-letters/{id}/retry",
            post(inbox::retry_dead_letter),
        )
}

/// `GET /console/`: the console for a signed-in operator, the login form for anyone else.
async fn page(operator: Result<Operator, ApiError>, headers: HeaderMap) -> Response {
    match operator {
        Ok(_) => assets::serve(&assets::CONSOLE_HTML, &headers),
        Err(ApiError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => assets::serve(&assets::LOGIN_HTML, &headers),
    }
}

/// `GET /console` (no slash): to the console, while it is on.
async fn to_console(State(state): State<AppState>) -> Response {
    if console_on(&state) {
        Redirect::permanent("/console/").into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

fn console_on(state: &AppState) -> bool {
    !state
        .config
        .current()
        .config
        .whatsapp
        .console
        .token
        .is_empty()
}

async fn stylesheet(State(state): State<AppState>, headers: HeaderMap) -> Response {
    public_asset(&state, &headers, &assets::CONSOLE_CSS)
}

async fn script(State(state): State<AppState>, headers: HeaderMap) -> Response {
    public_asset(&state, &headers, &assets::CONSOLE_JS)
}

/// The stylesheet and script hold nothing secret and the login form needs the former, so they
/// are served without a session, but only while the console is on.
fn public_asset(state: &AppState, headers: &HeaderMap, asset: &'static assets::Asset) -> Response {
    if console_on(state) {
        assets::serve(asset, headers)
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
