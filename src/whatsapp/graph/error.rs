//! What can go wrong when talking to the Graph API, and which failures are worth a retry.
//!
//! Meta answers errors as `{"error":{"message","type","code","error_subcode",
//! "error_data":{"details"},"fbtrace_id"}}`; [`GraphApiError`] keeps those fields typed so the
//! caller can log the code, count it in metrics and record it on the job. No variant ever holds
//! the access token, a request URL (media URLs carry signed query strings), a phone number or
//! message text.

use reqwest::header::HeaderMap;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Graph error codes that mean "slow down and try again later" (DESIGN.md).
const THROTTLING_CODES: [i64; 5] = [4, 80007, 130429, 131056, 133016];
/// Graph error codes for transient failures on Meta's side.
const TRANSIENT_CODES: [i64; 4] = [131000, 1, 2, 131053];
/// Code of an expired or invalid access token: only the operator can fix it.
pub const TOKEN_INVALID_CODE: i64 = 190;
/// Code of the number's throughput limit ("rate limit hit"): the whole channel slows down.
pub const THROUGHPUT_LIMIT_CODE: i64 = 130429;
/// Code of the pair rate limit: about one message every 6 s to the same user.
pub const PAIR_RATE_LIMIT_CODE: i64 = 131056;

/// An error answer from the Graph API (any non-2xx response), with Meta's fields typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphApiError {
    /// The HTTP status of the answer.
    pub http_status: u16,
    /// `error.code`; `None` when the body was not a Graph error (a proxy's HTML page, say).
    pub code: Option<i64>,
    /// `error.error_subcode`.
    pub subcode: Option<i64>,
    /// `error.type`, e.g. `OAuthException`.
    pub kind: Option<String>,
    /// `error.message` (Meta's wording; it carries no message text or phone number).
    pub message: String,
    /// `error.error_data.details`: usually the most useful line for an operator.
    pub details: Option<String>,
    /// `error.fbtrace_id`, which Meta's support asks for.
    pub fbtrace_id: Option<String>,
    /// `Retry-After` in seconds, when the answer carried one.
    pub retry_after: Option<Duration>,
}

impl GraphApiError {
    /// Builds the error from a non-2xx answer; a body that is not a Graph error still gives one.
    pub(crate) fn from_response(http_status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = crate::retry_after::from_headers(headers);
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) else {
            return GraphApiError {
                http_status,
                code: None,
                subcode: None,
                kind: None,
                message: format!("HTTP {http_status} without a Graph error body"),
                details: None,
                fbtrace_id: None,
                retry_after,
            };
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        GraphApiError {
            http_status,
            code: integer(error.get("code")),
            subcode: integer(error.get("error_subcode")),
            kind: text(error.get("type")),
            message: text(error.get("message")).unwrap_or_default(),
            details: text(error.get("error_data").and_then(|d| d.get("details"))),
            fbtrace_id: text(error.get("fbtrace_id")),
            retry_after,
        }
    }

    /// Throttling: the request was fine, Meta wants us to slow down.
    pub fn is_throttling(&self) -> bool {
        self.http_status == 429 || self.code.is_some_and(|c| THROTTLING_CODES.contains(&c))
    }

    /// Worth another attempt: throttling, a transient code, or a 5xx without a known final code.
    pub fn is_retryable(&self) -> bool {
        match self.code {
            Some(c) if THROTTLING_CODES.contains(&c) || TRANSIENT_CODES.contains(&c) => true,
            // Any other code Meta names is about this request (131047 outside the 24-hour
            // window, 131026 undeliverable, 100 bad parameter, 190 token...) unless the HTTP
            // status itself says "later".
            Some(_) => {
                self.http_status == 429 || (self.http_status >= 500 && !self.is_final_code())
            }
            None => self.http_status == 429 || self.http_status >= 500,
        }
    }

    fn is_final_code(&self) -> bool {
        matches!(
            self.code,
            Some(131047 | 131026 | 131049 | 130472 | 100 | TOKEN_INVALID_CODE)
        )
    }
}

impl fmt::Display for GraphApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph API error (HTTP {}", self.http_status)?;
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        if let Some(subcode) = self.subcode {
            write!(f, ", subcode {subcode}")?;
        }
        write!(f, "): {}", self.message)?;
        if let Some(details) = &self.details {
            write!(f, " ({details})")?;
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {trace}]")?;
        }
        Ok(())
    }
}

/// Any failure of a Graph API call.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with an error status.
    #[error("{0}")]
    Api(Box<GraphApiError>),
    /// No answer within the timeout. The request may have reached Meta.
    #[error("Graph API request timed out")]
    Timeout,
    /// Could not connect, or the connection broke before an answer came.
    #[error("could not reach the Graph API: {0}")]
    Connect(String),
    /// A 2xx answer we could not understand. Not retried: Meta may have accepted the message.
    #[error("unexpected Graph API response (HTTP {status}): {reason}")]
    BadResponse { status: u16, reason: String },
    /// Refused before sending: an id that is not safe to put in a URL path, an empty text.
    #[error("invalid Graph API request: {0}")]
    InvalidRequest(String),
    /// The HTTP client could not be built (TLS backend).
    #[error("could not build the HTTP client: {0}")]
    Setup(String),
}

impl GraphError {
    /// Worth another attempt (HTTP 429, 5xx, timeouts, connection errors, throttling and
    /// transient codes). Final errors (131047, 131026, 131049, 130472, 100, 190, other 4xx) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Api(e) => e.is_retryable(),
            GraphError::Timeout | GraphError::Connect(_) => true,
            GraphError::BadResponse { .. }
            | GraphError::InvalidRequest(_)
            | GraphError::Setup(_) => false,
        }
    }

    /// Meta's error code, when Meta sent one.
    pub fn code(&self) -> Option<i64> {
        self.api().and_then(|e| e.code)
    }

    /// The Graph error fields, when this is an error answer from Meta.
    pub fn api(&self) -> Option<&GraphApiError> {
        match self {
            GraphError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The wait Meta asked for with `Retry-After`.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// Maps a reqwest failure without its URL (media URLs carry signed query strings).
    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            return GraphError::Timeout;
        }
        let err = err.without_url();
        let text = crate::text::error_chain(&err);
        if err.is_builder() {
            GraphError::InvalidRequest(text)
        } else {
            GraphError::Connect(text)
        }
    }
}

/// Reads an integer that Meta may send as a number or as a numeric string.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::RETRY_AFTER;

    fn api(status: u16, code: Option<i64>) -> GraphApiError {
        GraphApiError {
            http_status: status,
            code,
            subcode: None,
            kind: None,
            message: String::new(),
            details: None,
            fbtrace_id: None,
            retry_after: None,
        }
    }

    #[test]
    fn throttling_and_transient_codes_are_retryable_whatever_the_status() {
        for code in [4, 80007, 130429, 131056, 133016, 131000, 1, 2, 131053] {
            assert!(api(400, Some(code)).is_retryable(), "code {code}");
        }
    }

    #[test]
    fn final_codes_are_not_retried_even_with_a_server_error_status() {
        for code in [131047, 131026, 131049, 130472, 100, 190] {
            assert!(!api(400, Some(code)).is_retryable(), "code {code}");
            assert!(!api(500, Some(code)).is_retryable(), "code {code} on 500");
        }
    }

    #[test]
    fn status_decides_when_the_code_is_unknown_or_missing() {
        assert!(api(429, None).is_retryable());
        assert!(api(503, None).is_retryable());
        assert!(api(502, Some(999_999)).is_retryable());
        assert!(!api(404, None).is_retryable());
        assert!(!api(403, Some(999_999)).is_retryable());
    }

    #[test]
    fn codes_sent_as_strings_and_retry_after_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        let body =
            br#"{"error":{"message":"m","code":"131056","error_subcode":"2494","fbtrace_id":"T"}}"#;
        let e = GraphApiError::from_response(400, &headers, body);
        assert_eq!(e.code, Some(131056));
        assert_eq!(e.subcode, Some(2494));
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(e.is_throttling());
    }

    #[test]
    fn a_body_that_is_not_a_graph_error_still_gives_the_status() {
        let e = GraphApiError::from_response(502, &HeaderMap::new(), b"<html>Bad gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.http_status, 502);
        assert!(e.is_retryable());
    }
}
