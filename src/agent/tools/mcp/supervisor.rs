//! Keeps one MCP server connected: start (or connect), list its tools, wait for the end of the
//! connection, start again after a backoff; stop when told to.

use super::{exposed_name, McpTool, State};
use crate::config::{McpToolSpec, McpTransport};
use crate::llm::ToolDefinition;
use crate::retry::MCP_RESTART;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::Value as Json;
use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A server that stayed up this long starts its next backoff from the first step again.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Lines of a stdio server's stderr kept to explain why it failed.
const STDERR_LINES: usize = 5;

type Client = RunningService<RoleClient, ()>;

/// The supervisor task of one server; ends when `stop` is cancelled.
pub(super) async fn supervise(
    spec: Arc<McpToolSpec>,
    state: watch::Sender<State>,
    stop: CancellationToken,
) {
    // Failures in a row; the wait after each is `retry::MCP_RESTART`'s.
    let mut failures = 0;
    loop {
        let started = Instant::now();
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            attempt = tokio::time::timeout(timeout(&spec), start(&spec, &stderr)) => attempt,
        };
        let attempt = match attempt {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {} seconds (timeout_seconds)",
                spec.timeout_seconds
            )),
        };
        match attempt {
            Ok((client, tools)) => {
                let names: Vec<&str> = tools.iter().map(|t| t.remote.as_str()).collect();
                tracing::info!(server = %spec.name, tools = %names.join(","), "mcp server ready");
                let _ = state.send(State::Ready {
                    peer: client.peer().clone(),
                    tools: Arc::new(tools),
                });
                let cancel = client.cancellation_token();
                let waiting = client.waiting();
                tokio::pin!(waiting);
                tokio::select! {
                    _ = stop.cancelled() => {
                        cancel.cancel();
                        // Let the transport close (the child process is killed with it).
                        let _ = tokio::time::timeout(Duration::from_secs(5), waiting).await;
                        return;
                    }
                    _ = &mut waiting => {}
                }
                let error = with_stderr("the server stopped".into(), &stderr);
                tracing::warn!(server = %spec.name, %error, "mcp server stopped; starting it again");
                let _ = state.send(State::Down { error });
            }
            Err(error) => {
                let error = with_stderr(error, &stderr);
                tracing::warn!(server = %spec.name, %error, retry_in_s = MCP_RESTART.wait(failures + 1).as_secs(), "mcp server unavailable");
                let _ = state.send(State::Down { error });
            }
        }
        if started.elapsed() >= STABLE_AFTER {
            failures = 0;
        }
        failures += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(MCP_RESTART.wait(failures)) => {}
        }
    }
}

fn timeout(spec: &McpToolSpec) -> Duration {
    Duration::from_secs(spec.timeout_seconds.max(1))
}

/// The error, with the last lines the server wrote to stderr when there are any.
fn with_stderr(error: String, stderr: &Mutex<VecDeque<String>>) -> String {
    let lines = stderr.lock().unwrap_or_else(|p| p.into_inner());
    if lines.is_empty() {
        error
    } else {
        let tail: Vec<&str> = lines.iter().map(String::as_str).collect();
        format!("{error}; its stderr ends with: {}", tail.join(" | "))
    }
}

/// Connects once and lists the tools.
async fn start(
    spec: &McpToolSpec,
    stderr: &Arc<Mutex<VecDeque<String>>>,
) -> Result<(Client, Vec<McpTool>), String> {
    let client = connect(spec, stderr).await?;
    let listed = client
        .peer()
        .list_all_tools()
        .await
        .map_err(|e| format!("cannot list its tools: {e}"))?;
    let tools = listed
        .into_iter()
        .filter(|tool| {
            spec.include
                .as_ref()
                .is_none_or(|include| include.iter().any(|name| name == tool.name.as_ref()))
        })
        .map(|tool| McpTool {
            remote: tool.name.to_string(),
            definition: ToolDefinition {
                name: exposed_name(&spec.name, &tool.name),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                parameters: Json::Object((*tool.input_schema).clone()),
            },
        })
        .collect();
    Ok((client, tools))
}

async fn connect(
    spec: &McpToolSpec,
    stderr: &Arc<Mutex<VecDeque<String>>>,
) -> Result<Client, String> {
    match &spec.transport {
        McpTransport::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env).kill_on_drop(true);
            let (transport, err) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{command}`: {e}"))?;
            if let Some(err) = err {
                let keep = Arc::clone(stderr);
                let server = spec.name.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(err).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!(server = %server, line = %line, "mcp server stderr");
                        let mut kept = keep.lock().unwrap_or_else(|p| p.into_inner());
                        if kept.len() == STDERR_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                });
            }
            ().serve(transport)
                .await
                .map_err(|e| format!("`{command}` did not start as an MCP server: {e}"))
        }
        McpTransport::Http { url, headers } => {
            install_crypto_provider();
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("header `{name}` is not a valid header name"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("the value of header `{name}` is not valid"))?;
                custom.insert(name, value);
            }
            let config =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                    url.as_str(),
                )
                .custom_headers(custom);
            let transport = StreamableHttpClientTransport::from_config(config);
            let shown = url.split(['?', '#']).next().unwrap_or_default();
            ().serve(transport)
                .await
                .map_err(|e| format!("cannot connect to {shown}: {e}"))
        }
    }
}

/// rmcp's HTTP client (reqwest 0.13, built without a TLS provider of its own) uses the
/// process's default rustls provider: ring, the one wagate's other HTTP clients use.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: another part of the process installed one first; that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
