//! Ollama's native chat API: `POST {endpoint}/api/chat` with `"stream": false`.
//!
//! Differences from the OpenAI shape that matter here: images are bare base64 strings on the
//! message, tool-call arguments are JSON objects (not strings), tool results are matched by
//! `tool_name`, `done_reason` stays "stop" when the model calls tools, and sampling parameters
//! live under `options` with `num_predict` for the token limit.

use super::error::ProviderError;
use super::provider::{generated_call_id, read_reply, tools_json, url};
use super::types::{ChatMessage, ChatRequest, ChatResponse, Role, ToolArguments, ToolCall, Usage};
use crate::config::ModelEndpoint;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

/// Parameters Ollama reads at the top level of the request rather than under `options`.
const TOP_LEVEL_PARAMETERS: &[&str] = &["keep_alive", "format", "think"];

pub(crate) async fn chat(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    req: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let body = request_body(endpoint, req);
    let response = http
        .post(url(endpoint, "api/chat"))
        .json(&body)
        .send()
        .await
        .map_err(|e| ProviderError::from_reqwest(e, endpoint.timeout_seconds))?;
    let reply: Reply = read_reply(response, endpoint.timeout_seconds).await?;
    into_response(reply, endpoint)
}

/// The JSON Ollama receives for `req`.
pub(crate) fn request_body(endpoint: &ModelEndpoint, req: &ChatRequest) -> Json {
    let mut body = Map::new();
    body.insert("model".into(), json!(endpoint.model));
    body.insert("stream".into(), json!(false));
    body.insert(
        "messages".into(),
        req.messages.iter().map(message_json).collect(),
    );
    let mut options = Map::new();
    for (key, value) in &endpoint.parameters {
        if TOP_LEVEL_PARAMETERS.contains(&key.as_str()) {
            body.insert(key.clone(), value.clone());
        } else if key == "max_tokens" {
            options.insert("num_predict".into(), value.clone());
        } else {
            options.insert(key.clone(), value.clone());
        }
    }
    // The window the request was fitted to: Ollama truncates a longer prompt from the front
    // (system prompt first) without a word, so it is told the window wagate assumed.
    if let Some(window) = req.context_window {
        options.entry("num_ctx").or_insert(json!(window));
    }
    if !options.is_empty() {
        body.insert("options".into(), Json::Object(options));
    }
    if !req.tools.is_empty() {
        body.insert("tools".into(), tools_json(&req.tools));
    }
    Json::Object(body)
}

fn message_json(message: &ChatMessage) -> Json {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    out.insert("content".into(), json!(message.content));
    if !message.images.is_empty() {
        let engine = base64::engine::general_purpose::STANDARD;
        let images: Vec<String> = message
            .images
            .iter()
            .map(|i| engine.encode(&i.data))
            .collect();
        out.insert("images".into(), json!(images));
    }
    if !message.tool_calls.is_empty() {
        let calls: Vec<Json> = message
            .tool_calls
            .iter()
            .map(|c| {
                // Ollama wants an object; arguments that never parsed are echoed as an empty one
                // (the tool result that follows tells the model what went wrong).
                let arguments = match &c.arguments {
                    ToolArguments::Valid(v) => v.clone(),
                    ToolArguments::Invalid { .. } => json!({}),
                };
                json!({"function": {"name": c.name, "arguments": arguments}})
            })
            .collect();
        out.insert("tool_calls".into(), Json::Array(calls));
    }
    if message.role == Role::Tool {
        if let Some(name) = &message.tool_name {
            out.insert("tool_name".into(), json!(name));
        }
    }
    Json::Object(out)
}

#[derive(Deserialize)]
struct Reply {
    message: Option<ReplyMessage>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
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
    #[serde(default)]
    arguments: Json,
}

fn into_response(reply: Reply, endpoint: &ModelEndpoint) -> Result<ChatResponse, ProviderError> {
    if let Some(error) = reply.error {
        return Err(ProviderError::BadResponse(error));
    }
    let message = reply
        .message
        .ok_or_else(|| ProviderError::BadResponse("no `message` in the reply".into()))?;
    let tool_calls = message
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
    Ok(ChatResponse {
        message: ChatMessage {
            tool_calls,
            ..ChatMessage::assistant(message.content.unwrap_or_default())
        },
        usage: Usage {
            prompt_tokens: reply.prompt_eval_count.unwrap_or(0),
            completion_tokens: reply.eval_count.unwrap_or(0),
        },
        model: format!("ollama/{}", endpoint.model),
    })
}

/// Ollama sends an object; a few models' templates produce a JSON string instead, which is
/// parsed the way OpenAI arguments are.
fn arguments_of(value: Json) -> ToolArguments {
    match value {
        Json::Null => ToolArguments::Valid(json!({})),
        Json::String(raw) => match serde_json::from_str(&raw) {
            Ok(parsed) => ToolArguments::Valid(parsed),
            Err(e) => ToolArguments::Invalid {
                raw,
                error: e.to_string(),
            },
        },
        other => ToolArguments::Valid(other),
    }
}
