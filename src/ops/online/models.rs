//! Model endpoints: reachable, the model there, and (with Ollama) its capabilities matching what
//! each agent relies on: vision for images under `capability_match`, tools when it has tools.

use super::{same_model, unreachable, CheckLine, Status, REQUEST_TIMEOUT};
use crate::config::{Config, ModelEndpoint, Provider, RoutingStrategy};
use crate::llm::capabilities::capabilities_of;
use crate::llm::discovery;
use crate::text::display_url;
use serde::Deserialize;
use serde_json::json;

/// What one model check found.
pub(super) struct ModelProbe {
    pub endpoint: ModelEndpoint,
    pub line: CheckLine,
    /// Whether the server reports the model takes images (`None`: it does not say).
    pub vision: Option<bool>,
    /// Whether the server reports the model takes tools (Ollama does).
    pub tools: Option<bool>,
}

/// Checks one model on its server.
pub(super) async fn probe(client: &reqwest::Client, endpoint: &ModelEndpoint) -> ModelProbe {
    let subject = format!(
        "model {}/{} at {}",
        endpoint.provider.name(),
        endpoint.model,
        display_url(&endpoint.endpoint)
    );
    let (status, mut detail, reported) = match endpoint.provider {
        Provider::Ollama => ollama(client, endpoint).await,
        Provider::Openai => openai(client, endpoint).await,
    };
    let mut facts = discovery::ServerFacts::default();
    if status != Status::Fail {
        if let Ok(found) = discovery::discover(client, endpoint, REQUEST_TIMEOUT).await {
            facts = found;
        }
        match (endpoint.context_window, facts.context_window) {
            (Some(configured), _) => detail.push_str(&format!(
                "; context window {configured} tokens (configured)"
            )),
            (None, Some((window, source))) => {
                detail.push_str(&format!("; context window {window} tokens ({source})"))
            }
            (None, None) => detail.push_str(
                "; context window not reported: 8192 tokens assumed (set `context_window`)",
            ),
        }
    }
    let reported_has = |c: &str| reported.as_ref().map(|l| l.iter().any(|x| x == c));
    ModelProbe {
        endpoint: endpoint.clone(),
        line: CheckLine::new(status, subject, detail),
        vision: reported_has("vision").or(facts.vision),
        tools: reported_has("tools").or(facts.tools),
    }
}

fn url(endpoint: &ModelEndpoint, path: &str) -> String {
    format!("{}/{path}", endpoint.endpoint.trim_end_matches('/'))
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
}

#[derive(Deserialize)]
struct Show {
    #[serde(default)]
    capabilities: Option<Vec<String>>,
}

/// `GET /api/tags` lists the pulled models; `POST /api/show` gives the model's capabilities.
async fn ollama(
    client: &reqwest::Client,
    endpoint: &ModelEndpoint,
) -> (Status, String, Option<Vec<String>>) {
    let response = match client.get(url(endpoint, "api/tags")).send().await {
        Ok(r) => r,
        Err(e) => return (Status::Fail, unreachable(&e), None),
    };
    if !response.status().is_success() {
        return (
            Status::Fail,
            format!(
                "/api/tags answered HTTP {}: is this an Ollama server? (an OpenAI-compatible \
                 server needs `provider: openai`)",
                response.status().as_u16()
            ),
            None,
        );
    }
    let tags: Tags = match response.json().await {
        Ok(t) => t,
        Err(e) => {
            return (
                Status::Fail,
                format!("/api/tags answer is not Ollama's model list: {e}"),
                None,
            )
        }
    };
    let wanted = &endpoint.model;
    let present = tags
        .models
        .iter()
        .any(|t| ollama_name_matches(&t.name, wanted) || ollama_name_matches(&t.model, wanted));
    if !present {
        let names: Vec<&str> = tags.models.iter().map(|t| t.name.as_str()).collect();
        let have = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        return (
            Status::Fail,
            format!("not pulled on this server: run `ollama pull {wanted}` (it has: {have})"),
            None,
        );
    }
    let show = client
        .post(url(endpoint, "api/show"))
        .json(&json!({ "model": wanted }))
        .send()
        .await;
    match show {
        Ok(r) if r.status().is_success() => match r.json::<Show>().await {
            Ok(Show {
                capabilities: Some(list),
            }) => (
                Status::Ok,
                format!("pulled; capabilities: {}", list.join(", ")),
                Some(list),
            ),
            _ => (
                Status::Ok,
                "pulled; this Ollama does not report capabilities (update it to have them checked)"
                    .into(),
                None,
            ),
        },
        Ok(r) => (
            Status::Ok,
            format!(
                "pulled; capabilities unknown (/api/show answered HTTP {})",
                r.status().as_u16()
            ),
            None,
        ),
        Err(e) => (
            Status::Ok,
            format!(
                "pulled; capabilities unknown (/api/show: {})",
                unreachable(&e)
            ),
            None,
        ),
    }
}

/// `llama3.1` means `llama3.1:latest` to Ollama.
fn ollama_name_matches(listed: &str, wanted: &str) -> bool {
    listed == wanted || (!wanted.contains(':') && listed == format!("{wanted}:latest"))
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ModelId>,
}

#[derive(Deserialize)]
struct ModelId {
    id: String,
}

/// `GET {endpoint}/models` with the bearer key lists the models the server serves.
async fn openai(
    client: &reqwest::Client,
    endpoint: &ModelEndpoint,
) -> (Status, String, Option<Vec<String>>) {
    let mut request = client.get(url(endpoint, "models"));
    if !endpoint.api_key.is_empty() {
        request = request.bearer_auth(endpoint.api_key.expose());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return (Status::Fail, unreachable(&e), None),
    };
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        401 | 403 => {
            return (
                Status::Fail,
                format!("the api_key was refused (HTTP {status}): check the key in the agent file"),
                None,
            )
        }
        404 | 405 => {
            return (
                Status::Warn,
                format!(
                    "reachable, but it has no model list (/models answered HTTP {status}); the \
                     model name could not be confirmed"
                ),
                None,
            )
        }
        _ => {
            return (
                Status::Fail,
                format!("/models answered HTTP {status}"),
                None,
            )
        }
    }
    let list: ModelList = match response.json().await {
        Ok(l) => l,
        Err(e) => {
            return (
                Status::Warn,
                format!("reachable, but /models is not an OpenAI model list ({e})"),
                None,
            )
        }
    };
    if list.data.iter().any(|m| m.id == endpoint.model) {
        return (Status::Ok, "listed by the server".into(), None);
    }
    let ids: Vec<&str> = list.data.iter().take(10).map(|m| m.id.as_str()).collect();
    let listed = if ids.is_empty() {
        "nothing".to_string()
    } else {
        ids.join(", ")
    };
    // llama-server lists its one model under its file path unless started with `--alias`, and
    // answers to any model name: a chat that works is what matters.
    match test_chat(client, endpoint).await {
        Ok(()) => (
            Status::Warn,
            format!(
                "not in the server's model list (it lists: {listed}), but a test chat naming \
                 `{}` was answered, so it works: this server ignores the model name (llama-server \
                 lists its model by file path unless started with `--alias`)",
                endpoint.model
            ),
            None,
        ),
        Err(why) => (
            Status::Fail,
            format!("not served here; the server lists: {listed}; a test chat failed: {why}"),
            None,
        ),
    }
}

/// A one-token chat naming the configured model.
async fn test_chat(client: &reqwest::Client, endpoint: &ModelEndpoint) -> Result<(), String> {
    let mut request = client.post(url(endpoint, "chat/completions")).json(&json!({
        "model": endpoint.model,
        "messages": [{"role": "user", "content": "Say OK."}],
        "max_tokens": 1,
        "stream": false,
    }));
    if !endpoint.api_key.is_empty() {
        request = request.bearer_auth(endpoint.api_key.expose());
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(unreachable(&e)),
    }
}

/// One line per agent: do its models have what it relies on?
pub(super) fn agent_lines(config: &Config, probes: &[ModelProbe]) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for (name, agent) in &config.agents {
        let subject = format!("agent {name}");
        let file = config
            .agent_files
            .get(name)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "its agent file".into());
        let spec = &agent.spec;
        let candidates = spec.model.candidates();
        let probe = |c: &ModelEndpoint| probes.iter().find(|p| same_model(&p.endpoint, c));
        let has = |c: &ModelEndpoint, capability: &str, configured: bool| {
            let reported = probe(c).and_then(|p| match capability {
                "vision" => p.vision,
                _ => p.tools,
            });
            reported.unwrap_or(configured)
        };
        let label = |c: &ModelEndpoint| format!("{}/{}", c.provider.name(), c.model);
        let mut problems: Vec<(Status, String)> = Vec::new();

        if spec.model.routing.strategy == RoutingStrategy::CapabilityMatch {
            for c in &candidates {
                let believed = capabilities_of(c).vision;
                if believed && !has(c, "vision", true) {
                    problems.push((
                        Status::Fail,
                        format!(
                            "images are routed to {} but its server reports no vision for it: \
                             use a vision model, or declare its `capabilities` without vision in \
                             {file}",
                            label(c)
                        ),
                    ));
                }
            }
        }
        let vision: Vec<String> = candidates
            .iter()
            .filter(|c| has(c, "vision", capabilities_of(c).vision))
            .map(|c| label(c))
            .collect();
        if vision.is_empty() {
            problems.push((
                Status::Warn,
                "no model can see images: a customer's photo cannot be answered; add a vision \
                 model (e.g. `ollama pull llava:7b`) as primary or fallback"
                    .into(),
            ));
        }
        if !spec.tools.is_empty() {
            let with_tools: Vec<String> = candidates
                .iter()
                .filter(|c| capabilities_of(c).tools && has(c, "tools", true))
                .map(|c| label(c))
                .collect();
            if with_tools.is_empty() {
                problems.push((
                    Status::Fail,
                    "the agent has tools but none of its models can call them: use a model with \
                     tool support (e.g. llama3.1, qwen2.5)"
                        .into(),
                ));
            }
            for c in &candidates {
                if capabilities_of(c).tools && !has(c, "tools", true) {
                    problems.push((
                        Status::Warn,
                        format!(
                            "Ollama reports no tool support for {}: each call with tools fails \
                             over to the next model; declare its `capabilities` without tools in \
                             {file} so it is called without them",
                            label(c)
                        ),
                    ));
                }
            }
        }
        if problems.is_empty() {
            let detail = if vision.is_empty() {
                "its models have what it needs".to_string()
            } else {
                format!("images go to {}", vision.join(", "))
            };
            lines.push(CheckLine::new(Status::Ok, subject.clone(), detail));
        }
        for (status, detail) in problems {
            lines.push(CheckLine::new(status, subject.clone(), detail));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_name_without_a_tag_means_latest() {
        assert!(ollama_name_matches("llama3.1:latest", "llama3.1"));
        assert!(ollama_name_matches("llava:7b", "llava:7b"));
        assert!(!ollama_name_matches("llava:13b", "llava:7b"));
    }
}
