//! What a model server says about a model: its context window and, where it reports them, its
//! input modalities and tool support. Used by the router (the window, when a request could
//! need it) and by `wagate check --online` (everything).
//!
//! - Ollama: `POST /api/show` gives `model_info.<arch>.context_length` (the model's maximum),
//!   `parameters` (with the `num_ctx` in effect when the model sets one) and `capabilities`.
//!   The window used is that `num_ctx`, else the model's maximum up to 8192; wagate then sends
//!   it as `num_ctx` on every request, so Ollama never truncates the prompt from the front.
//! - OpenAI-compatible: `GET {endpoint}/models` (llama.cpp's `meta.n_ctx`, vLLM's
//!   `max_model_len`, and `architecture.input_modalities`), then llama.cpp's `GET /props`
//!   (`default_generation_settings.n_ctx`, `modalities.vision`).

use super::budget::DEFAULT_CONTEXT_WINDOW;
use crate::config::{ModelEndpoint, Provider};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// What the server told about one model. `None`: it did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFacts {
    /// Tokens, and where the number came from (`/api/show num_ctx`, `/props`, ...).
    pub context_window: Option<(u32, &'static str)>,
    /// Whether the model accepts images.
    pub vision: Option<bool>,
    /// Whether the model takes tools (Ollama reports it).
    pub tools: Option<bool>,
}

/// The server could not be asked at all (unreachable, timeout).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// Asks `endpoint`'s server about its model, each request bounded by `timeout`.
pub async fn discover(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    timeout: Duration,
) -> Result<ServerFacts, Unreachable> {
    match endpoint.provider {
        Provider::Ollama => ollama(http, endpoint, timeout).await,
        Provider::Openai => openai(http, endpoint, timeout).await,
    }
}

fn base(endpoint: &ModelEndpoint) -> &str {
    endpoint.endpoint.trim_end_matches('/')
}

async fn get_json(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<Option<Json>, Unreachable> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| Unreachable(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Ok(None);
    }
    Ok(response.json::<Json>().await.ok())
}

async fn ollama(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    timeout: Duration,
) -> Result<ServerFacts, Unreachable> {
    let request = http
        .post(format!("{}/api/show", base(endpoint)))
        .json(&json!({"model": endpoint.model}));
    let Some(show) = get_json(request, timeout).await? else {
        return Ok(ServerFacts::default());
    };
    Ok(ollama_facts(&show))
}

/// Reads an `/api/show` answer.
pub(crate) fn ollama_facts(show: &Json) -> ServerFacts {
    let num_ctx = show["parameters"].as_str().and_then(|parameters| {
        parameters.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("num_ctx"))
                .then(|| words.next()?.parse::<u32>().ok())
                .flatten()
        })
    });
    let model_max = show["model_info"].as_object().and_then(|info| {
        info.iter()
            .find(|(key, _)| key.ends_with(".context_length"))
            .and_then(|(_, v)| v.as_u64())
            .and_then(|n| u32::try_from(n).ok())
    });
    let context_window = match (num_ctx, model_max) {
        (Some(n), _) => Some((n, "/api/show num_ctx")),
        (None, Some(max)) => Some((
            max.min(DEFAULT_CONTEXT_WINDOW),
            "/api/show context_length (up to 8192)",
        )),
        (None, None) => None,
    };
    let capabilities: Option<Vec<&str>> = show["capabilities"]
        .as_array()
        .map(|list| list.iter().filter_map(Json::as_str).collect());
    ServerFacts {
        context_window,
        vision: capabilities.as_ref().map(|c| c.contains(&"vision")),
        tools: capabilities.as_ref().map(|c| c.contains(&"tools")),
    }
}

async fn openai(
    http: &reqwest::Client,
    endpoint: &ModelEndpoint,
    timeout: Duration,
) -> Result<ServerFacts, Unreachable> {
    let mut facts = ServerFacts::default();
    let mut models = http.get(format!("{}/models", base(endpoint)));
    if !endpoint.api_key.is_empty() {
        models = models.bearer_auth(endpoint.api_key.expose());
    }
    if let Some(list) = get_json(models, timeout).await? {
        facts = model_list_facts(&list, &endpoint.model);
    }
    if facts.context_window.is_some() && facts.vision.is_some() {
        return Ok(facts);
    }
    // llama.cpp serves /props beside /v1.
    let root = base(endpoint).trim_end_matches("/v1");
    let mut props = http.get(format!("{root}/props"));
    if !endpoint.api_key.is_empty() {
        props = props.bearer_auth(endpoint.api_key.expose());
    }
    if let Ok(Some(props)) = get_json(props, timeout).await {
        let n_ctx = props
            .pointer("/default_generation_settings/n_ctx")
            .or_else(|| props.get("n_ctx"))
            .and_then(Json::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        if facts.context_window.is_none() {
            facts.context_window = n_ctx.map(|n| (n, "/props n_ctx"));
        }
        if facts.vision.is_none() {
            facts.vision = props.pointer("/modalities/vision").and_then(Json::as_bool);
        }
    }
    Ok(facts)
}

/// Reads an OpenAI-style model list: the entry named `model`, or the only entry (llama.cpp
/// lists its one model under its file path and answers to any name).
pub(crate) fn model_list_facts(list: &Json, model: &str) -> ServerFacts {
    let entries = list["data"].as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e["id"].as_str() == Some(model))
        .or_else(|| (entries.len() == 1).then(|| &entries[0]));
    let Some(entry) = entry else {
        return ServerFacts::default();
    };
    let window = [
        ("/meta/n_ctx", "/models meta.n_ctx"),
        ("/max_model_len", "/models max_model_len"),
        ("/context_length", "/models context_length"),
        ("/max_context_length", "/models max_context_length"),
    ]
    .iter()
    .find_map(|(pointer, source)| {
        entry
            .pointer(pointer)
            .and_then(Json::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| (n, *source))
    });
    let vision = entry
        .pointer("/architecture/input_modalities")
        .and_then(Json::as_array)
        .map(|m| m.iter().any(|x| x.as_str() == Some("image")));
    ServerFacts {
        context_window: window,
        vision,
        tools: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_show_gives_num_ctx_else_the_model_maximum_up_to_8192() {
        let show = json!({
            "parameters": "stop \"<|eot_id|>\"\nnum_ctx 4096",
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            "capabilities": ["completion", "tools"]
        });
        let facts = ollama_facts(&show);
        assert_eq!(facts.context_window.map(|w| w.0), Some(4096));
        assert_eq!(facts.vision, Some(false));
        assert_eq!(facts.tools, Some(true));
        let show = json!({"model_info": {"gemma3.context_length": 131072}, "capabilities": ["completion", "vision"]});
        let facts = ollama_facts(&show);
        assert_eq!(facts.context_window.map(|w| w.0), Some(8192));
        assert_eq!(facts.vision, Some(true));
        let small = json!({"model_info": {"phi.context_length": 2048}});
        assert_eq!(ollama_facts(&small).context_window.map(|w| w.0), Some(2048));
    }

    #[test]
    fn a_llama_cpp_model_list_gives_n_ctx_and_modalities_under_any_name() {
        let list = json!({"object": "list", "data": [{
            "id": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "meta": {"n_ctx": 2048, "n_ctx_train": 8192}
        }]});
        let facts = model_list_facts(&list, "smollm2");
        assert_eq!(facts.context_window, Some((2048, "/models meta.n_ctx")));
        assert_eq!(facts.vision, Some(false));
    }
}
