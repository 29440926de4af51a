//! Who is asking for a console route: nobody may (console off), a signed-in operator, or
//! someone who must sign in first.
//!
//! The session itself (login, logout, cookie, CSRF) belongs to the operator API's auth; this
//! only asks it. Kept apart so the page routes do not depend on how sessions are made.

use crate::http::AppState;
use axum::http::HeaderMap;

pub enum Access {
    /// `console.token` is empty: the console does not exist (404).
    Off,
    /// A valid bearer token or session cookie.
    Operator,
    /// The console is on, the request has no valid credentials.
    Anonymous,
}

pub fn check(state: &AppState, headers: &HeaderMap) -> Access {
    let config = state.config.current();
    let token = &config.config.whatsapp.console.token;
    if token.is_empty() {
        return Access::Off;
    }
    if crate::http::operator_auth::is_operator(token, headers) {
        Access::Operator
    } else {
        Access::Anonymous
    }
}
