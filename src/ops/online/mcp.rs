//! MCP tool servers: each one started (stdio) or connected to (streamable HTTP) as the agent
//! would, and its tools listed under the names the model sees.

use super::{CheckLine, Status};
use crate::agent::tools::mcp::McpServer;
use crate::config::{Config, McpToolSpec, ToolSpec};

/// Starts a check of every MCP server of every agent (each distinct server once).
pub(super) fn spawn_all(config: &Config) -> Vec<tokio::task::JoinHandle<CheckLine>> {
    let mut seen: Vec<&McpToolSpec> = Vec::new();
    let mut tasks = Vec::new();
    for (agent, file) in &config.agents {
        for tool in &file.spec.tools {
            let ToolSpec::Mcp(spec) = tool else { continue };
            if seen.contains(&spec) {
                continue;
            }
            seen.push(spec);
            let spec = spec.clone();
            let subject = format!("mcp {} (agent {agent})", spec.name);
            tasks.push(tokio::spawn(async move { check(&spec, subject).await }));
        }
    }
    tasks
}

async fn check(spec: &McpToolSpec, subject: String) -> CheckLine {
    let server = McpServer::start(spec);
    server.ready().await;
    if let Some(problem) = server.problem() {
        return CheckLine::new(Status::Fail, subject, problem);
    }
    let tools = server.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.definition.name.as_str()).collect();
    if names.is_empty() {
        let why = match &spec.include {
            Some(include) => format!(
                "running, but none of its tools is in `include` ({})",
                include.join(", ")
            ),
            None => "running, but it offers no tools".into(),
        };
        return CheckLine::new(Status::Warn, subject, why);
    }
    let mut detail = format!("{} tools: {}", names.len(), names.join(", "));
    if let Some(include) = &spec.include {
        let missing: Vec<&str> = include
            .iter()
            .filter(|name| !tools.iter().any(|t| &t.remote == *name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            detail.push_str(&format!(
                "; `include` names tools it does not have: {}",
                missing.join(", ")
            ));
            return CheckLine::new(Status::Warn, subject, detail);
        }
    }
    CheckLine::new(Status::Ok, subject, detail)
}
