//! `type: mcp` tools: the tools of a Model Context Protocol server, offered to the model as
//! `<name>__<tool>` with the server's own JSON schemas.
//!
//! Each server of an agent has a supervisor task (see `supervisor.rs`) that starts the stdio
//! server (or connects to the streamable-HTTP one), lists its tools, and when the connection
//! ends (the process died, the server went away) starts it again after a backoff of 1 s doubling
//! to 60 s. Dropping the [`McpServer`] (a config reload builds new agents; shutdown drops them
//! all) stops the supervisor, which stops the process.
//!
//! A turn that starts while a server is still starting waits for it, up to its
//! `timeout_seconds`; a server that is down offers no tools meanwhile. A call is bounded by the
//! same `timeout_seconds`, and its text is cut to `max_response_bytes` like an HTTP tool's.

mod supervisor;

use super::http::cut_to;
use crate::config::McpToolSpec;
use crate::llm::ToolDefinition;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{Peer, RoleClient};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Separates the server's name from its tool's name in what the model sees.
pub const SEPARATOR: &str = "__";
/// Function names longer than this are refused by OpenAI-compatible servers.
const MAX_NAME: usize = 64;

/// One MCP server of an agent, kept running by its supervisor while this value lives.
#[derive(Debug)]
pub struct McpServer {
    spec: Arc<McpToolSpec>,
    state: watch::Receiver<State>,
    _stop: DropGuard,
}

/// Where the server is, as the supervisor last saw it.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// The first connection attempt is under way.
    Starting,
    /// Connected, with the tools it offers (after `include`).
    Ready {
        peer: Peer<RoleClient>,
        tools: Arc<Vec<McpTool>>,
    },
    /// Not connected; the supervisor tries again after a backoff.
    Down { error: String },
}

/// One tool of the server as the model sees it.
#[derive(Debug, Clone)]
pub struct McpTool {
    /// The server's name for it.
    pub remote: String,
    /// `<server>__<tool>`, what the model calls.
    pub definition: ToolDefinition,
}

impl McpServer {
    /// Starts supervising the server. Needs a tokio runtime; without one (a tool that only
    /// reads the config) the server stays down and offers nothing.
    pub fn start(spec: &McpToolSpec) -> McpServer {
        let spec = Arc::new(spec.clone());
        let stop = CancellationToken::new();
        let (tx, rx) = watch::channel(State::Starting);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(supervisor::supervise(
                    Arc::clone(&spec),
                    tx,
                    stop.child_token(),
                ));
            }
            Err(_) => {
                let _ = tx.send(State::Down {
                    error: "not started (no async runtime)".into(),
                });
            }
        }
        McpServer {
            spec,
            state: rx,
            _stop: stop.drop_guard(),
        }
    }

    /// The server's name in the agent file.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Waits until the first connection attempt has finished, at most the server's timeout.
    pub async fn ready(&self) {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| !matches!(s, State::Starting));
        let _ = tokio::time::timeout(self.timeout(), wait).await;
    }

    /// The tools offered now (none while the server is starting or down).
    pub fn tools(&self) -> Arc<Vec<McpTool>> {
        match &*self.state.borrow() {
            State::Ready { tools, .. } => Arc::clone(tools),
            _ => Arc::new(Vec::new()),
        }
    }

    /// Why the server offers no tools, when it does not.
    pub fn problem(&self) -> Option<String> {
        match &*self.state.borrow() {
            State::Starting => Some("still starting".into()),
            State::Down { error } => Some(error.clone()),
            State::Ready { .. } => None,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.spec.timeout_seconds.max(1))
    }

    /// Calls the tool the model knows as `exposed`; the text goes back to the model.
    pub async fn call(&self, exposed: &str, arguments: Map<String, Json>) -> String {
        let (peer, tool) = {
            let state = self.state.borrow();
            let State::Ready { peer, tools } = &*state else {
                return format!(
                    "The tool `{exposed}` is unavailable right now (its server is not running); \
                     answer without it."
                );
            };
            let Some(tool) = tools.iter().find(|t| t.definition.name == exposed) else {
                return format!("There is no tool named `{exposed}`.");
            };
            (peer.clone(), tool.remote.clone())
        };
        let params = CallToolRequestParams::new(tool).with_arguments(arguments);
        let max = self.spec.max_response_bytes;
        match tokio::time::timeout(self.timeout(), peer.call_tool(params)).await {
            Ok(Ok(result)) => result_text(&result, max),
            Ok(Err(error)) => {
                tracing::warn!(server = %self.spec.name, tool = exposed, %error, "mcp tool call failed");
                format!("The tool `{exposed}` failed: {error}")
            }
            Err(_) => format!(
                "The tool `{exposed}` did not answer within {} seconds.",
                self.spec.timeout_seconds
            ),
        }
    }
}

/// The model's name for a server's tool: `<server>__<tool>`, with characters function names
/// may not hold replaced by `_`, at most 64 characters.
pub fn exposed_name(server: &str, tool: &str) -> String {
    let clean: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{server}{SEPARATOR}{clean}");
    name.truncate(MAX_NAME);
    name
}

/// The result as text for the model: the text blocks, a note for other content, the structured
/// result when there is no text; an error result says so. Cut to `max` bytes.
fn result_text(result: &CallToolResult, max: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in &result.content {
        match block {
            ContentBlock::Text(text) => parts.push(text.text.clone()),
            ContentBlock::Image(_) => parts.push("[an image, not shown]".into()),
            ContentBlock::Audio(_) => parts.push("[audio, not shown]".into()),
            _ => parts.push("[a resource, not shown]".into()),
        }
    }
    if parts.is_empty() {
        if let Some(structured) = &result.structured_content {
            parts.push(structured.to_string());
        }
    }
    let mut text = parts.join("\n");
    if result.is_error == Some(true) {
        text = format!("The tool reported an error: {text}");
    }
    cut_to(text.as_bytes(), max, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_get_the_server_prefix_and_lose_characters_models_refuse() {
        assert_eq!(exposed_name("files", "read_file"), "files__read_file");
        assert_eq!(exposed_name("kb", "search.docs v2"), "kb__search_docs_v2");
        assert_eq!(exposed_name("kb", &"x".repeat(100)).len(), 64);
    }
}
