//! `wagate check --online`: after the offline validation, ask every service the config names
//! whether it will work: each model endpoint (and, with Ollama, whether the model is pulled and
//! has the capabilities the agent relies on), the Graph token for each business number, and each
//! transcription endpoint, and each MCP tool server (started or connected to, its tools listed).
//! Every check has its own timeout and they all run at once.

mod graph;
mod mcp;
mod models;

use crate::config::{Config, ModelEndpoint};
use crate::secret::Secret;
use crate::text::display_url;
use std::fmt::Write as _;
use std::time::Duration;

/// Bound on each request a check makes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Works, but something deserves a look; does not fail the run.
    Warn,
    /// Will not work: `check --online` exits 3.
    Fail,
    /// Not checked, and why is in the detail (dry run).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the online report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub status: Status,
    /// What was checked: `model ollama/llava:7b at http://...`, `graph 1065...`.
    pub subject: String,
    /// What was found, and what to do when it is not `ok`.
    pub detail: String,
}

impl CheckLine {
    fn new(status: Status, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckLine {
            status,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// Every online check's result, in a stable order.
#[derive(Debug, Clone)]
pub struct OnlineReport {
    pub lines: Vec<CheckLine>,
}

impl OnlineReport {
    /// No check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.status != Status::Fail)
    }

    /// The report as the terminal shows it.
    pub fn render(&self) -> String {
        let mut out = String::from("online checks:\n");
        for line in &self.lines {
            let _ = writeln!(
                out,
                "  {:<4}  {}: {}",
                line.status.label(),
                line.subject,
                line.detail
            );
        }
        let count = |s: Status| self.lines.iter().filter(|l| l.status == s).count();
        let _ = writeln!(
            out,
            "{} ok, {} warn, {} FAIL, {} skipped",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        );
        out
    }
}

/// Runs every online check `config` calls for.
pub async fn run(config: &Config) -> OnlineReport {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            return OnlineReport {
                lines: vec![CheckLine::new(
                    Status::Fail,
                    "http client",
                    format!("cannot start: {e}"),
                )],
            }
        }
    };

    // Start everything first, then collect in order: the checks overlap, the output is stable.
    let model_tasks: Vec<_> = distinct_models(config)
        .into_iter()
        .map(|endpoint| {
            let client = client.clone();
            tokio::spawn(async move { models::probe(&client, &endpoint).await })
        })
        .collect();
    let graph_tasks = graph::spawn_all(&client, &config.whatsapp);
    let mcp_tasks = mcp::spawn_all(config);
    let transcription_tasks: Vec<_> = distinct_transcriptions(config)
        .into_iter()
        .map(|(endpoint, api_key)| {
            let client = client.clone();
            tokio::spawn(async move { transcription(&client, &endpoint, &api_key).await })
        })
        .collect();

    let mut lines = Vec::new();
    let mut probes = Vec::new();
    for task in model_tasks {
        match task.await {
            Ok(probe) => {
                lines.push(probe.line.clone());
                probes.push(probe);
            }
            Err(e) => lines.push(CheckLine::new(Status::Fail, "model check", e.to_string())),
        }
    }
    lines.extend(models::agent_lines(config, &probes));
    for task in graph_tasks {
        lines.push(
            task.await
                .unwrap_or_else(|e| CheckLine::new(Status::Fail, "graph check", e.to_string())),
        );
    }
    for task in mcp_tasks {
        lines.push(
            task.await
                .unwrap_or_else(|e| CheckLine::new(Status::Fail, "mcp check", e.to_string())),
        );
    }
    for task in transcription_tasks {
        lines.push(task.await.unwrap_or_else(|e| {
            CheckLine::new(Status::Fail, "transcription check", e.to_string())
        }));
    }
    OnlineReport { lines }
}

/// Every model of every agent once, in agent then registration order.
fn distinct_models(config: &Config) -> Vec<ModelEndpoint> {
    let mut seen: Vec<ModelEndpoint> = Vec::new();
    for agent in config.agents.values() {
        for candidate in agent.spec.model.candidates() {
            if !seen.iter().any(|m| same_model(m, candidate)) {
                seen.push(candidate.clone());
            }
        }
    }
    seen
}

/// Same server, same model, same key: one check answers for both.
fn same_model(a: &ModelEndpoint, b: &ModelEndpoint) -> bool {
    a.provider == b.provider
        && a.endpoint == b.endpoint
        && a.model == b.model
        && a.api_key.expose() == b.api_key.expose()
}

fn distinct_transcriptions(config: &Config) -> Vec<(String, Secret)> {
    let mut seen: Vec<(String, Secret)> = Vec::new();
    for agent in config.agents.values() {
        if let Some(t) = &agent.spec.transcription {
            if !seen.iter().any(|(endpoint, _)| *endpoint == t.endpoint) {
                seen.push((t.endpoint.clone(), t.api_key.clone()));
            }
        }
    }
    seen
}

/// A GET on the transcription base URL: any HTTP answer means the server is reachable. The
/// transcription route itself is not exercised (it needs an audio file and may cost money).
async fn transcription(client: &reqwest::Client, endpoint: &str, api_key: &Secret) -> CheckLine {
    let subject = format!("transcription at {}", display_url(endpoint));
    let mut request = client.get(endpoint);
    if !api_key.is_empty() {
        request = request.bearer_auth(api_key.expose());
    }
    match request.send().await {
        Ok(response) => CheckLine::new(
            Status::Ok,
            subject,
            format!(
                "reachable (HTTP {}); only the connection is checked, not a transcription",
                response.status().as_u16()
            ),
        ),
        Err(e) => CheckLine::new(Status::Fail, subject, unreachable(&e)),
    }
}

/// A request that got no HTTP answer, said plainly.
fn unreachable(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else {
        format!("unreachable: {}", crate::text::root_cause(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_lose_their_credentials_and_query() {
        assert_eq!(
            display_url("https://user:pw@host:1/v1?key=abc"),
            "https://host:1/v1"
        );
    }
}
