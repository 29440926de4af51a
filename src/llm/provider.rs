//! One call to one model endpoint, whatever its provider, bounded by its `timeout_seconds`.
//! Also the small pieces both wire formats share.

use super::error::ProviderError;
use super::types::{ChatRequest, ChatResponse, ToolDefinition};
use super::{ollama, openai};
use crate::config::{ModelEndpoint, Provider};
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Sends `req` to `endpoint` and waits at most its `timeout_seconds` for the whole exchange
/// (connect, retries on 429, body).
pub(crate) async fn call(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    req: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    // A zero timeout would fail every call before it starts; treat it as the smallest useful one.
    let seconds = endpoint.timeout_seconds.max(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let exchange = async {
        match endpoint.provider {
            Provider::Ollama => ollama::chat(http, endpoint, req).await,
            Provider::Openai => openai::chat(http, endpoint, req, deadline).await,
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::Timeout { seconds }),
    }
}

/// `{endpoint}/{path}` without a doubled slash when the configured base ends with one.
pub(crate) fn url(endpoint: &ModelEndpoint, path: &str) -> String {
    format!("{}/{}", endpoint.endpoint.trim_end_matches('/'), path)
}

/// The OpenAI function-tool shape, which Ollama accepts as well.
pub(crate) fn tools_json(tools: &[ToolDefinition]) -> Json {
    Json::Array(
        tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    }
                })
            })
            .collect(),
    )
}

/// Ollama (and some OpenAI-compatible servers) give tool calls no id; the ReAct loop still needs
/// one to pair each result with its call, unique within the process.
pub(crate) fn generated_call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("call_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Reads a reply body; a non-2xx status becomes [`ProviderError::Status`] with the provider's
/// message, a 2xx body is parsed as `T`.
pub(crate) async fn read_reply<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    timeout_seconds: u64,
) -> Result<T, ProviderError> {
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| ProviderError::from_reqwest(e, timeout_seconds))?;
    if !status.is_success() {
        return Err(ProviderError::from_status(status, &body));
    }
    serde_json::from_str(&body).map_err(|e| ProviderError::BadResponse(e.to_string()))
}
