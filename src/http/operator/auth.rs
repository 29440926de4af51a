//! Who may use the operator API and the console: a bearer token (`console.token`, compared in
//! constant time) or the console's session cookie, whose value is derived from the same token
//! (an HMAC of a fixed string keyed by it). No session is kept on the server: changing the
//! token logs every console out.
//!
//! Cookie-authenticated POSTs must also look same-origin (the cookie is `SameSite=Strict`
//! already; this is the second lock): a cross-site `Sec-Fetch-Site` or an `Origin` that is not
//! this host is refused, and without `Origin` the request must carry `X-Requested-With`, a
//! header a cross-site form cannot send. Bearer requests are exempt (a browser never adds them
//! on its own).

use crate::http::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The console session cookie's name.
pub const SESSION_COOKIE: &str = "wagate_console";

/// An authenticated operator request.
#[derive(Debug, Clone, Copy)]
pub struct Operator {
    /// Came with the session cookie (a browser), not a bearer token.
    pub via_cookie: bool,
}

/// The console token in force; `None` when the API is off.
pub(crate) fn console_token(state: &AppState) -> Option<String> {
    let loaded = state.config.current();
    let token = loaded.config.whatsapp.console.token.expose();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The cookie value for `token`.
pub fn session_value(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(b"wagate console session v1");
    hex::encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session cookie's value in the request, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether a browser request comes from a page of this server (see the module comment).
/// `need_marker`: without `Origin`, require `X-Requested-With` (API calls; not the login form).
pub(crate) fn looks_same_origin(headers: &HeaderMap, need_marker: bool) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if matches!(text("sec-fetch-site"), Some("cross-site" | "same-site")) {
        return false;
    }
    match text("origin") {
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, host)| host);
            let hosts = [text("host"), text("x-forwarded-host")];
            origin_host.is_some_and(|o| hosts.iter().flatten().any(|h| h.eq_ignore_ascii_case(o)))
        }
        None => !need_marker || text("x-requested-with").is_some_and(|v| !v.is_empty()),
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = console_token(state) else {
            return Err(ApiError::NotFound);
        };
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let given = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("")
                .trim();
            return if same(given, &token) {
                Ok(Operator { via_cookie: false })
            } else {
                Err(ApiError::NotAuthenticated)
            };
        }
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(ApiError::NotAuthenticated);
        };
        if !same(cookie, &session_value(&token)) {
            return Err(ApiError::NotAuthenticated);
        }
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if !reads && !looks_same_origin(&parts.headers, true) {
            tracing::warn!(path = %parts.uri.path(), "operator request refused: cross-site");
            return Err(ApiError::CrossSite);
        }
        Ok(Operator { via_cookie: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_session_value_changes_with_the_token() {
        assert_eq!(session_value("a"), session_value("a"));
        assert_ne!(session_value("a"), session_value("b"));
        assert!(!session_value("a").contains('a') || session_value("a").len() == 64);
    }

    #[test]
    fn a_post_from_another_site_is_not_same_origin() {
        let evil = headers(&[
            ("host", "ops.example.com"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!looks_same_origin(&evil, true));
        let fetch = headers(&[
            ("host", "ops.example.com"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(!looks_same_origin(&fetch, false));
        let ours = headers(&[
            ("host", "ops.example.com"),
            ("origin", "https://ops.example.com"),
        ]);
        assert!(looks_same_origin(&ours, true));
        let proxied = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "ops.example.com"),
            ("origin", "https://ops.example.com"),
        ]);
        assert!(looks_same_origin(&proxied, true));
    }

    #[test]
    fn without_origin_an_api_post_needs_the_marker_header() {
        assert!(!looks_same_origin(&headers(&[("host", "h")]), true));
        assert!(looks_same_origin(
            &headers(&[("host", "h"), ("x-requested-with", "wagate-console")]),
            true
        ));
        assert!(looks_same_origin(&headers(&[("host", "h")]), false));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; wagate_console=abc ; b=2")]);
        assert_eq!(session_cookie(&h), Some("abc"));
    }
}
