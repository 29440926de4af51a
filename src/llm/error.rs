//! What can go wrong in one call to one model. Messages name the failure and the provider's own
//! words, never the API key (it only ever travels in a header) and never the request URL (a
//! `${VAR}`-expanded endpoint could carry a token in its query string).

/// One provider call failed. Every variant makes the router try the next candidate.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No complete answer within the endpoint's `timeout_seconds`.
    #[error("timeout after {seconds}s")]
    Timeout { seconds: u64 },
    /// The server could not be reached (refused, DNS, TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A non-2xx answer, with the message the provider gave.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// A 2xx answer whose body is not the provider's reply shape.
    #[error("unexpected response: {0}")]
    BadResponse(String),
    /// Any other transport failure (reset connection, body read error).
    #[error("request failed: {0}")]
    Request(String),
}

/// Provider messages are cut to this many characters so one error cannot flood a log line.
const MAX_MESSAGE_CHARS: usize = 300;

impl ProviderError {
    /// Classifies a reqwest failure, dropping the URL and keeping the underlying cause.
    pub(crate) fn from_reqwest(err: reqwest::Error, timeout_seconds: u64) -> Self {
        if err.is_timeout() {
            return ProviderError::Timeout {
                seconds: timeout_seconds,
            };
        }
        let connect = err.is_connect();
        let decode = err.is_decode();
        let text = error_chain(&err.without_url());
        if connect {
            ProviderError::Connect(text)
        } else if decode {
            ProviderError::BadResponse(text)
        } else {
            ProviderError::Request(text)
        }
    }

    /// A non-2xx answer: the message is read from the body the way both providers write it.
    pub(crate) fn from_status(status: reqwest::StatusCode, body: &str) -> Self {
        ProviderError::Status {
            status: status.as_u16(),
            message: provider_message(body, status),
        }
    }
}

use crate::text::{cut_chars, error_chain};

/// Ollama writes `{"error": "..."}`; OpenAI `{"error": {"message": "..."}}`; other compatible
/// servers `{"message"}` or `{"detail"}`, or plain text. Falls back to the status reason.
fn provider_message(body: &str, status: reqwest::StatusCode) -> String {
    let from_json = crate::text::json_error_message(body);
    let message = match from_json {
        Some(m) => m,
        None if !body.trim().is_empty() => body.trim().to_owned(),
        None => status.canonical_reason().unwrap_or("no message").to_owned(),
    };
    cut_chars(&message, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn ollama_and_openai_error_bodies_both_give_their_message() {
        let ollama = ProviderError::from_status(
            StatusCode::NOT_FOUND,
            r#"{"error":"model \"x\" not found, try pulling it first"}"#,
        );
        assert_eq!(
            ollama.to_string(),
            "HTTP 404: model \"x\" not found, try pulling it first"
        );
        let openai = ProviderError::from_status(
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        );
        assert_eq!(openai.to_string(), "HTTP 401: Incorrect API key provided");
    }

    #[test]
    fn a_plain_text_or_empty_error_body_still_explains_itself() {
        let text = ProviderError::from_status(StatusCode::BAD_GATEWAY, "upstream down\n");
        assert_eq!(text.to_string(), "HTTP 502: upstream down");
        let empty = ProviderError::from_status(StatusCode::SERVICE_UNAVAILABLE, "");
        assert_eq!(empty.to_string(), "HTTP 503: Service Unavailable");
    }

    #[test]
    fn a_huge_error_body_is_cut() {
        let body = "é".repeat(5000);
        let err = ProviderError::from_status(StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert!(err.to_string().chars().count() < 320);
    }
}
