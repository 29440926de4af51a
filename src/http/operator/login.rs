//! The console's login and logout: the token in a form, a session cookie out. The page itself
//! is deliberately bare; the console (`/console/`) is built elsewhere.

use super::auth::{console_token, looks_same_origin, session_value, SESSION_COOKIE};
use crate::http::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Where the console lives; login sends the browser there.
pub const CONSOLE_PATH: &str = "/console/";

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `GET /console/login`: the form.
pub async fn page(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    console_token(&state).ok_or(ApiError::NotFound)?;
    Ok(Html(login_page(None)))
}

/// `POST /console/login`: the right token sets the session cookie and goes to the console; a
/// wrong one shows the form again with an error.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    // Off first: a console that is off answers 404 whatever the body.
    let token = console_token(&state).ok_or(ApiError::NotFound)?;
    if !looks_same_origin(&headers, false) {
        return Err(ApiError::CrossSite);
    }
    let Ok(Form(form)) = form else {
        return Err(ApiError::BadRequest("send the form field `token`"));
    };
    let given = form.token.trim();
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        tracing::warn!("console login refused: wrong token");
        let page = login_page(Some("That token is not right. Try again."));
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{}",
        session_value(&token),
        secure(&headers)
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, CONSOLE_PATH.to_string()),
        ],
    )
        .into_response())
}

/// `POST /console/logout`: the cookie is cleared.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    console_token(&state).ok_or(ApiError::NotFound)?;
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure(&headers)
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/console/login".to_string()),
        ],
    )
        .into_response())
}

/// Behind a TLS proxy the cookie is marked `Secure`.
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    if https {
        "; Secure"
    } else {
        ""
    }
}

/// The login form; `error` shown above it.
pub fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wagate console: log in</title>
<style>body{{font:16px system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}}
input,button{{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}}
.error{{color:#a00}}</style></head>
<body><main><h1>wagate console</h1>{error}
<form method="post" action="/console/login">
<label for="token">Console token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form></main></body></html>
"#
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
