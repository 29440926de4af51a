//! The tools an agent's model may call in the ReAct loop: `builtin` ones chosen by name,
//! `http` ones described in the agent file, and the tools of `mcp` servers.
//!
//! A call never fails the turn: an unknown tool, arguments that are not valid JSON, an HTTP
//! error or a timeout all become text the model reads as the tool's result, so it can retry,
//! apologise or answer without the tool.

pub mod builtin;
mod clock;
pub mod http;
pub mod mcp;
mod whatsapp;

use crate::config::ToolSpec;
use crate::llm::{ToolArguments, ToolCall, ToolDefinition};
use builtin::Builtin;
use http::HttpTool;
use mcp::McpServer;
use serde_json::{Map, Value as Json};

pub use builtin::BUILTIN_TOOLS;

/// What a tool call produced: the text the model reads as its result, and, for a builtin that
/// sends a WhatsApp message, that message (sent by the turn, in order, before the reply).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    pub send: Option<crate::whatsapp::graph::OutgoingMessage>,
}

impl ToolOutput {
    fn text(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            send: None,
        }
    }
}

/// An agent's tools, ready to be offered to the model and called.
#[derive(Debug, Default)]
pub struct ToolSet {
    tools: Vec<Tool>,
    /// MCP servers, kept running while the tool set lives; their tools come and go with them.
    servers: Vec<McpServer>,
}

#[derive(Debug)]
enum Tool {
    Builtin {
        tool: Builtin,
        definition: ToolDefinition,
    },
    Http(HttpTool),
}

impl Tool {
    fn definition(&self) -> &ToolDefinition {
        match self {
            Tool::Builtin { definition, .. } => definition,
            Tool::Http(tool) => &tool.definition,
        }
    }
}

/// A tool in the agent file that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown builtin tool `{name}` (known: {})", BUILTIN_TOOLS.join(", "))]
    UnknownBuiltin { name: String },
    #[error("tool `{name}`: {source}")]
    BadMethod {
        name: String,
        source: http::BadMethod,
    },
    #[error("two tools are named `{name}`")]
    Duplicate { name: String },
}

impl ToolSet {
    /// Builds the tools of one agent. HTTP tools do not use the shared `_http` client but one
    /// of their own with no redirects and an address check (see `http::guard`); the parameter
    /// stays for tools that may share the pool.
    pub fn new(specs: &[ToolSpec], _http: reqwest::Client) -> Result<ToolSet, ToolError> {
        let mut tools: Vec<Tool> = Vec::with_capacity(specs.len());
        let mut names: Vec<&str> = Vec::with_capacity(specs.len());
        let mut mcp_specs = Vec::new();
        for spec in specs {
            if names.contains(&spec.name()) {
                return Err(ToolError::Duplicate {
                    name: spec.name().to_owned(),
                });
            }
            names.push(spec.name());
            let tool = match spec {
                ToolSpec::Mcp(mcp) => {
                    mcp_specs.push(mcp);
                    continue;
                }
                ToolSpec::Builtin { name, description } => {
                    let tool = Builtin::named(name)
                        .ok_or_else(|| ToolError::UnknownBuiltin { name: name.clone() })?;
                    Tool::Builtin {
                        tool,
                        definition: tool.definition(description.as_deref()),
                    }
                }
                ToolSpec::Http {
                    name,
                    description,
                    parameters,
                    http: spec,
                } => {
                    let definition = ToolDefinition {
                        name: name.clone(),
                        description: description.clone(),
                        parameters: parameters.clone(),
                    };
                    let tool =
                        HttpTool::new(definition, spec).map_err(|source| ToolError::BadMethod {
                            name: name.clone(),
                            source,
                        })?;
                    Tool::Http(tool)
                }
            };
            tools.push(tool);
        }
        // Started last: a config error above must not leave servers running.
        let servers = mcp_specs.into_iter().map(McpServer::start).collect();
        Ok(ToolSet { tools, servers })
    }

    /// No tools: the model can only answer in text.
    pub fn empty() -> ToolSet {
        ToolSet::default()
    }

    /// True when the agent has no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.servers.is_empty()
    }

    /// The agent's MCP servers.
    pub fn servers(&self) -> &[McpServer] {
        &self.servers
    }

    /// What the model is offered: builtin and HTTP tools in the order of the agent file, then
    /// the tools of each MCP server that is up (waiting for one that is still starting).
    pub async fn definitions(&self) -> Vec<ToolDefinition> {
        let mut definitions: Vec<ToolDefinition> =
            self.tools.iter().map(|t| t.definition().clone()).collect();
        for server in &self.servers {
            server.ready().await;
            definitions.extend(server.tools().iter().map(|t| t.definition.clone()));
        }
        definitions
    }

    /// Runs one call and returns the text fed back to the model as its result.
    pub async fn call(&self, call: &ToolCall) -> String {
        self.run(call).await.text
    }

    /// Runs one call: the text fed back to the model, and the message a sending builtin
    /// produced (nothing is sent here; the turn sends it).
    pub async fn run(&self, call: &ToolCall) -> ToolOutput {
        let Some(tool) = self.tools.iter().find(|t| t.definition().name == call.name) else {
            if let Some(server) = self.server_of(&call.name) {
                return ToolOutput::text(match arguments_object(&call.arguments) {
                    Ok(arguments) => server.call(&call.name, arguments).await,
                    Err(problem) => format!("The tool `{}` was not called: {problem}", call.name),
                });
            }
            let mut known: Vec<String> = self
                .tools
                .iter()
                .map(|t| t.definition().name.clone())
                .collect();
            for server in &self.servers {
                known.extend(server.tools().iter().map(|t| t.definition.name.clone()));
            }
            return ToolOutput::text(format!(
                "There is no tool named `{}`. Available tools: {}.",
                call.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        let arguments = match arguments_object(&call.arguments) {
            Ok(arguments) => arguments,
            Err(problem) => {
                return ToolOutput::text(format!(
                    "The tool `{}` was not called: {problem}",
                    call.name
                ))
            }
        };
        match tool {
            Tool::Builtin { tool, .. } => tool.call(&arguments),
            Tool::Http(tool) => ToolOutput::text(tool.call(&arguments).await),
        }
    }

    /// The MCP server whose tools include `name` now.
    fn server_of(&self, name: &str) -> Option<&McpServer> {
        self.servers
            .iter()
            .find(|s| s.tools().iter().any(|t| t.definition.name == name))
    }
}

impl ToolSet {
    /// `Some(reason)` when `call` is to the builtin `handoff_to_human` of this set.
    pub fn handoff_reason(&self, call: &ToolCall) -> Option<Option<String>> {
        let is_handoff = self.tools.iter().any(|t| {
            matches!(t, Tool::Builtin { tool: Builtin::HandoffToHuman, definition } if definition.name == call.name)
        });
        if !is_handoff {
            return None;
        }
        let reason = arguments_object(&call.arguments)
            .ok()
            .and_then(|args| {
                args.get("reason")
                    .and_then(Json::as_str)
                    .map(str::trim)
                    .map(str::to_owned)
            })
            .filter(|r| !r.is_empty());
        Some(reason)
    }
}

/// The arguments as a JSON object, or what to tell the model when they are not one.
fn arguments_object(arguments: &ToolArguments) -> Result<Map<String, Json>, String> {
    match arguments {
        ToolArguments::Valid(Json::Object(map)) => Ok(map.clone()),
        ToolArguments::Valid(Json::Null) => Ok(Map::new()),
        ToolArguments::Valid(other) => Err(format!(
            "its arguments must be a JSON object, got {other}. Call it again with an object."
        )),
        ToolArguments::Invalid { error, .. } => Err(format!(
            "its arguments were not valid JSON ({error}). Call it again with a valid JSON object."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools(yaml: &str) -> Result<ToolSet, ToolError> {
        let specs: Vec<ToolSpec> = serde_yaml::from_str(yaml).expect("tool yaml");
        ToolSet::new(&specs, reqwest::Client::new())
    }

    fn call(name: &str, arguments: ToolArguments) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments,
        }
    }

    #[tokio::test]
    async fn an_unknown_tool_name_is_told_to_the_model_with_the_real_names() {
        let set = tools("[{type: builtin, name: current_time}]").expect("tools");
        let text = set
            .call(&call("weather", ToolArguments::Valid(json!({}))))
            .await;
        assert!(text.contains("no tool named `weather`"), "{text}");
        assert!(text.contains("current_time"), "{text}");
    }

    #[tokio::test]
    async fn invalid_argument_json_is_told_to_the_model_with_the_parse_error() {
        let set = tools("[{type: builtin, name: current_time}]").expect("tools");
        let invalid = ToolArguments::Invalid {
            raw: "{\"utc_offset\": ".into(),
            error: "EOF while parsing an object at line 1 column 15".into(),
        };
        let text = set.call(&call("current_time", invalid)).await;
        assert!(text.contains("not valid JSON"), "{text}");
        assert!(text.contains("EOF while parsing"), "{text}");
    }

    #[test]
    fn an_unknown_builtin_a_bad_method_and_a_duplicate_name_are_config_errors() {
        let unknown = tools("[{type: builtin, name: weather}]").unwrap_err();
        assert!(unknown.to_string().contains("current_time"), "{unknown}");
        let method = tools("[{type: http, name: t, http: {method: 'GE T', url: 'http://x'}}]");
        assert!(matches!(method, Err(ToolError::BadMethod { .. })));
        let twice =
            tools("[{type: builtin, name: current_time}, {type: builtin, name: current_time}]");
        assert!(matches!(twice, Err(ToolError::Duplicate { .. })));
    }

    #[test]
    fn a_call_to_the_handoff_tool_is_recognised_with_its_reason() {
        let set =
            tools("[{type: builtin, name: handoff_to_human}, {type: builtin, name: current_time}]")
                .expect("tools");
        let asked = call(
            "handoff_to_human",
            ToolArguments::Valid(json!({"reason": "  wants a refund "})),
        );
        assert_eq!(
            set.handoff_reason(&asked),
            Some(Some("wants a refund".into()))
        );
        let bare = call(
            "handoff_to_human",
            ToolArguments::Valid(json!({"reason": ""})),
        );
        assert_eq!(set.handoff_reason(&bare), Some(None));
        let other = call("current_time", ToolArguments::Valid(json!({})));
        assert_eq!(set.handoff_reason(&other), None);
        // Without the tool in the agent file, a call by that name hands nothing over.
        let without = tools("[{type: builtin, name: current_time}]").expect("tools");
        assert_eq!(without.handoff_reason(&asked), None);
    }

    #[tokio::test]
    async fn definitions_follow_the_agent_file() {
        let set = tools(
            "[{type: builtin, name: current_time, description: 'Clock'},
              {type: http, name: weather, description: 'Weather by city',
               parameters: {type: object, properties: {city: {type: string}}},
               http: {url: 'http://x/{{city}}'}}]",
        )
        .expect("tools");
        let defs = set.definitions().await;
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].description, "Clock");
        assert_eq!(defs[1].name, "weather");
        assert_eq!(defs[1].parameters["properties"]["city"]["type"], "string");
    }
}
