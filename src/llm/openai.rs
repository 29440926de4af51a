//! Any OpenAI-compatible Chat Completions server (OpenAI, vLLM, llama.cpp, LM Studio, Ollama
//! `/v1`): `POST {endpoint}/chat/completions`.
//!
//! Differences from Ollama that matter here: images are `image_url` content parts holding data
//! URLs, tool-call arguments are JSON *strings* that may not parse, every tool call id needs its
//! `{role:"tool", tool_call_id}` message right after the assistant message, and a 429 with
//! `Retry-After` is worth one or two retries (without it, it is a quota error).

use super::error::ProviderError;
use super::provider::{generated_call_id, read_reply, tools_json, url};
use super::types::{ChatMessage, ChatRequest, ChatResponse, Role, ToolArguments, ToolCall, Usage};
use crate::config::ModelEndpoint;
use base64::Engine;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use tokio::time::Instant;

use crate::retry::{MODEL_LONGEST_RETRY_AFTER, MODEL_RATE_LIMIT_RETRIES};

pub(crate) async fn chat(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    req: &ChatRequest,
    deadline: Instant,
) -> Result<ChatResponse, ProviderError> {
    let body = request_body(endpoint, req);
    let mut retries = 0;
    loop {
        let mut request = http.post(url(endpoint, "chat/completions")).json(&body);
        if !endpoint.api_key.is_empty() {
            request = request.bearer_auth(endpoint.api_key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(e, endpoint.timeout_seconds))?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS && retries < MODEL_RATE_LIMIT_RETRIES
        {
            if let Some(wait) = crate::retry_after::from_headers(response.headers()) {
                if wait <= MODEL_LONGEST_RETRY_AFTER && Instant::now() + wait < deadline {
                    retries += 1;
                    tracing::debug!(model = %endpoint.model, wait_ms = wait.as_millis() as u64, "rate limited; retrying after Retry-After");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
        }
        let reply: Reply = read_reply(response, endpoint.timeout_seconds).await?;
        return into_response(reply, endpoint);
    }
}

/// The JSON the server receives for `req`.
pub(crate) fn request_body(endpoint: &ModelEndpoint, req: &ChatRequest) -> Json {
    let mut body = Map::new();
    body.insert("model".into(), json!(endpoint.model));
    body.insert(
        "messages".into(),
        req.messages.iter().map(message_json).collect(),
    );
    for (key, value) in &endpoint.parameters {
        body.insert(key.clone(), value.clone());
    }
    body.insert("stream".into(), json!(false));
    if !req.tools.is_empty() {
        body.insert("tools".into(), tools_json(&req.tools));
    }
    Json::Object(body)
}

fn message_json(message: &ChatMessage) -> Json {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User if message.images.is_empty() => {
            json!({"role": "user", "content": message.content})
        }
        Role::User => json!({"role": "user", "content": content_parts(message)}),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        Role::Assistant => {
            let calls: Vec<Json> = message.tool_calls.iter().map(tool_call_json).collect();
            // OpenAI itself answers tool calls with `content: null`; echo the same shape.
            let content = if message.content.is_empty() {
                Json::Null
            } else {
                json!(message.content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        }),
    }
}

fn content_parts(message: &ChatMessage) -> Json {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut parts = Vec::with_capacity(message.images.len() + 1);
    if !message.content.is_empty() {
        parts.push(json!({"type": "text", "text": message.content}));
    }
    for image in &message.images {
        let url = format!(
            "data:{};base64,{}",
            image.mime_type,
            engine.encode(&image.data)
        );
        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
    }
    Json::Array(parts)
}

fn tool_call_json(call: &ToolCall) -> Json {
    let arguments = match &call.arguments {
        ToolArguments::Valid(v) => v.to_string(),
        ToolArguments::Invalid { raw, .. } => raw.clone(),
    };
    json!({
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    })
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ReplyUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    /// A string, null with tool calls, or (some servers) an array of text parts.
    #[serde(default)]
    content: Json,
    #[serde(default)]
    tool_calls: Option<Vec<ReplyToolCall>>,
}

#[derive(Deserialize)]
struct ReplyToolCall {
    #[serde(default)]
    id: Option<String>,
    function: ReplyFunction,
}

#[derive(Deserialize)]
struct ReplyFunction {
    name: String,
    /// A JSON string per the spec; a few compatible servers send an object.
    #[serde(default)]
    arguments: Json,
}

#[derive(Deserialize)]
struct ReplyUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn into_response(reply: Reply, endpoint: &ModelEndpoint) -> Result<ChatResponse, ProviderError> {
    let choice = reply
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::BadResponse("no `choices` in the reply".into()))?;
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|c| ToolCall {
            id: c
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(generated_call_id),
            name: c.function.name,
            arguments: arguments_of(c.function.arguments),
        })
        .collect();
    let usage = reply.usage.map_or(Usage::default(), |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    });
    Ok(ChatResponse {
        message: ChatMessage {
            tool_calls,
            ..ChatMessage::assistant(text_of(choice.message.content))
        },
        usage,
        model: format!("openai/{}", endpoint.model),
    })
}

fn text_of(content: Json) -> String {
    match content {
        Json::String(s) => s,
        Json::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Json::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Parses the arguments string. Invalid JSON is kept with its parse error so the ReAct loop can
/// tell the model instead of failing the turn.
fn arguments_of(value: Json) -> ToolArguments {
    match value {
        Json::String(raw) if raw.trim().is_empty() => ToolArguments::Valid(json!({})),
        Json::String(raw) => match serde_json::from_str(&raw) {
            Ok(parsed) => ToolArguments::Valid(parsed),
            Err(e) => ToolArguments::Invalid {
                raw,
                error: e.to_string(),
            },
        },
        Json::Null => ToolArguments::Valid(json!({})),
        other => ToolArguments::Valid(other),
    }
}
