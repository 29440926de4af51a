//! What can go wrong in one call to one model. Messages name the failure and the provider's own
//! words, never the API key (it only ever travels in a header) and never the request URL (a
//! `${VAR}`-expanded endpoint could carry a token in its query string).

use crate::config::{ModelEndpoint, Provider};
use serde_json::Value as Json;

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
    /// The server refused the request as longer than the model's context (llama.cpp's
    /// `exceed_context_size_error`, OpenAI's `context_length_exceeded`, vLLM's "maximum context
    /// length"): the router sends it again with less history.
    #[error("HTTP {status}: {message}")]
    ContextExceeded {
        status: u16,
        message: String,
        /// The context size the server reported, when it did (llama.cpp's `n_ctx`).
        n_ctx: Option<u32>,
    },
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
        let message = provider_message(body, status);
        if status.is_client_error() && context_exceeded(body) {
            let n_ctx = serde_json::from_str::<Json>(body).ok().and_then(|json| {
                json.pointer("/error/n_ctx")
                    .and_then(Json::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
            });
            return ProviderError::ContextExceeded {
                status: status.as_u16(),
                message,
                n_ctx,
            };
        }
        ProviderError::Status {
            status: status.as_u16(),
            message,
        }
    }

    /// A problem of this request rather than of the server (a 4xx other than 408 and 429): it
    /// says nothing about whether the server can answer other conversations, so it never opens
    /// the circuit breaker.
    pub fn is_request_problem(&self) -> bool {
        match self {
            ProviderError::ContextExceeded { .. } => true,
            ProviderError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            _ => false,
        }
    }

    /// What to do about it, for the operator reading the error (`None`: nothing obvious).
    pub fn hint(&self, endpoint: &ModelEndpoint) -> Option<String> {
        let ollama = endpoint.provider == Provider::Ollama;
        match self {
            ProviderError::Connect(_) if ollama => Some(
                "is Ollama running there? Start it (`ollama serve`), or point the model's \
                 `endpoint` at it (the shipped agent file reads OLLAMA_ENDPOINT)"
                    .into(),
            ),
            ProviderError::Connect(_) => Some(
                "is the server running there? Check the model's `endpoint` in the agent file"
                    .into(),
            ),
            ProviderError::Timeout { seconds } => Some(format!(
                "no answer within the model's `timeout_seconds` ({seconds}s): raise it, or use a \
                 smaller or less busy model"
            )),
            ProviderError::Status {
                status: 401 | 403, ..
            } => Some(
                "the server refused the API key: check `api_key` in the agent file (and the \
                 variable it reads)"
                    .into(),
            ),
            ProviderError::Status { status: 404, .. } if ollama => Some(format!(
                "is the model pulled? `ollama pull {}`",
                endpoint.model
            )),
            ProviderError::Status { status: 404, .. } => Some(
                "check `model`, and that `endpoint` is the API base (it usually ends in `/v1`)"
                    .into(),
            ),
            ProviderError::ContextExceeded { .. } => Some(
                "the request does not fit the model's context even with less history: set the \
                 model's `context_window` to the server's context size"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Whether an error body says the prompt is longer than the model's context, in the words of
/// llama.cpp, OpenAI, vLLM and other compatible servers.
fn context_exceeded(body: &str) -> bool {
    const MARKERS: &[&str] = &[
        "exceed_context_size_error",
        "context_length_exceeded",
        "maximum context length",
        "exceeds the available context size",
        "context window",
    ];
    let lower = body.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
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
    fn context_overflow_answers_are_recognised_with_the_size_the_server_reports() {
        let llama = ProviderError::from_status(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":400,"message":"request (3031 tokens) exceeds the available context size (2048 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":3031,"n_ctx":2048}}"#,
        );
        assert!(
            matches!(
                llama,
                ProviderError::ContextExceeded {
                    n_ctx: Some(2048),
                    ..
                }
            ),
            "{llama:?}"
        );
        let openai = ProviderError::from_status(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}}"#,
        );
        assert!(matches!(
            openai,
            ProviderError::ContextExceeded { n_ctx: None, .. }
        ));
        let vllm = ProviderError::from_status(
            StatusCode::BAD_REQUEST,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens"}"#,
        );
        assert!(vllm.is_request_problem());
        assert!(matches!(vllm, ProviderError::ContextExceeded { .. }));
    }

    #[test]
    fn only_4xx_answers_other_than_408_and_429_are_problems_of_the_request() {
        let status = |code: u16| ProviderError::Status {
            status: code,
            message: String::new(),
        };
        assert!(status(400).is_request_problem());
        assert!(status(404).is_request_problem());
        assert!(!status(408).is_request_problem());
        assert!(!status(429).is_request_problem());
        assert!(!status(500).is_request_problem());
        assert!(!ProviderError::Connect("refused".into()).is_request_problem());
    }

    #[test]
    fn a_huge_error_body_is_cut() {
        let body = "é".repeat(5000);
        let err = ProviderError::from_status(StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert!(err.to_string().chars().count() < 320);
    }
}
