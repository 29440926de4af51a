//! The semantic checks of one agent file: what serde accepts but the runtime could not execute.

use super::agent::{
    AgentFile, GuardrailRule, McpTransport, ModelEndpoint, ToolSpec, TranscriptionProvider,
};
use super::parse::SourceFile;
use super::path::FieldPath;
use super::validate::{at_least_one, check_url, empty, Findings};
use super::BUILTIN_TOOLS;
use std::collections::BTreeSet;

const API_VERSION: &str = "astromesh/v1";
/// A misspelling found in the reference platform's own agent files; accepted with a warning.
const API_VERSION_TYPO: &str = "astromech/v1";
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Checks one agent, and normalizes what has one obvious meaning (`method: post` → `POST`).
pub(crate) fn check_agent(agent: &mut AgentFile, src: &SourceFile, out: &mut Findings) {
    let root = FieldPath::default();
    match agent.api_version.as_str() {
        API_VERSION => {}
        API_VERSION_TYPO => out.warnings.push(src.problem(
            &root.key("apiVersion"),
            format!("`{API_VERSION_TYPO}` is a misspelling of `{API_VERSION}`; accepted"),
        )),
        other => out.problems.push(src.problem(
            &root.key("apiVersion"),
            format!("unsupported apiVersion `{other}`; expected `{API_VERSION}`"),
        )),
    }
    if agent.kind != "Agent" {
        out.problems.push(src.problem(
            &root.key("kind"),
            format!("unsupported kind `{}`; expected `Agent`", agent.kind),
        ));
    }
    let name_field = FieldPath::keys(&["metadata", "name"]);
    if agent.metadata.name.trim().is_empty() {
        out.problems
            .push(src.problem(&name_field, empty(src, &name_field)));
    }

    let spec = root.key("spec");
    let model = spec.key("model");
    check_model(&agent.spec.model.primary, src, &model.key("primary"), out);
    if let Some(fallback) = &agent.spec.model.fallback {
        check_model(fallback, src, &model.key("fallback"), out);
    }

    let orch = spec.key("orchestration");
    let o = &agent.spec.orchestration;
    if o.pattern != "react" {
        out.problems.push(src.problem(
            &orch.key("pattern"),
            format!("unsupported pattern `{}`; wagate runs `react`", o.pattern),
        ));
    }
    at_least_one(
        src,
        &orch.key("max_iterations"),
        o.max_iterations.into(),
        out,
    );
    at_least_one(src, &orch.key("timeout_seconds"), o.timeout_seconds, out);

    if let Some(memory) = &agent.spec.memory.conversational {
        let mem = spec.key("memory").key("conversational");
        if memory.backend != "sqlite" {
            out.problems.push(src.problem(
                &mem.key("backend"),
                format!(
                    "unsupported backend `{}`; wagate keeps memory in `sqlite`",
                    memory.backend
                ),
            ));
        }
        if memory.strategy != "sliding_window" {
            out.problems.push(src.problem(
                &mem.key("strategy"),
                format!(
                    "unsupported strategy `{}`; expected `sliding_window`",
                    memory.strategy
                ),
            ));
        }
        at_least_one(src, &mem.key("max_turns"), memory.max_turns as u64, out);
    }

    for (side, rules) in [
        ("input", &agent.spec.guardrails.input),
        ("output", &agent.spec.guardrails.output),
    ] {
        for (i, rule) in rules.iter().enumerate() {
            if let GuardrailRule::MaxLength { max_chars } = rule {
                let field = spec.key("guardrails").key(side).index(i).key("max_chars");
                at_least_one(src, &field, *max_chars as u64, out);
            }
        }
    }

    check_tools(&mut agent.spec.tools, src, &spec.key("tools"), out);

    if let Some(t) = &agent.spec.transcription {
        let field = spec.key("transcription");
        check_url(src, &field.key("endpoint"), &t.endpoint, out);
        let model = t.model.as_deref().map(str::trim).unwrap_or_default();
        if t.provider == TranscriptionProvider::Openai && model.is_empty() {
            let model_field = field.key("model");
            let why = match t.model {
                Some(_) => empty(src, &model_field),
                None => "is required for provider `openai` (e.g. `whisper-1`, or the model name \
                         your OpenAI-compatible server expects)"
                    .into(),
            };
            out.problems.push(src.problem(&model_field, why));
        }
        at_least_one(src, &field.key("max_seconds"), t.max_seconds, out);
        at_least_one(src, &field.key("timeout_seconds"), t.timeout_seconds, out);
    }

    check_prompt(
        &agent.spec.prompts.system,
        src,
        &spec.key("prompts").key("system"),
        out,
    );
}

fn check_model(m: &ModelEndpoint, src: &SourceFile, field: &FieldPath, out: &mut Findings) {
    let model = field.key("model");
    if m.model.trim().is_empty() {
        out.problems.push(src.problem(&model, empty(src, &model)));
    }
    check_url(src, &field.key("endpoint"), &m.endpoint, out);
    at_least_one(src, &field.key("timeout_seconds"), m.timeout_seconds, out);
    if let Some(window) = m.context_window {
        if window < MIN_CONTEXT_WINDOW {
            out.problems.push(src.problem(
                &field.key("context_window"),
                format!(
                    "{window} tokens cannot hold a system prompt, a message and a reply; use \
                     the model's context size (at least {MIN_CONTEXT_WINDOW}, e.g. 8192), or \
                     leave it out to have it asked of the server"
                ),
            ));
        }
    }
}

/// The smallest `context_window` accepted: below it a system prompt and a reply barely fit.
const MIN_CONTEXT_WINDOW: u32 = 512;

fn check_tools(tools: &mut [ToolSpec], src: &SourceFile, field: &FieldPath, out: &mut Findings) {
    let mut seen = BTreeSet::new();
    for (i, tool) in tools.iter_mut().enumerate() {
        let here = field.index(i);
        let name = tool.name().to_string();
        if !is_tool_name(&name) {
            out.problems.push(src.problem(
                &here.key("name"),
                format!("invalid tool name `{name}`: use 1 to 64 letters, digits, `_` or `-`"),
            ));
        } else if !seen.insert(name.clone()) {
            out.problems.push(src.problem(
                &here.key("name"),
                format!("duplicate tool name `{name}`: each tool needs its own name"),
            ));
        }
        match tool {
            ToolSpec::Builtin { name, .. } => {
                if !BUILTIN_TOOLS.contains(&name.as_str()) {
                    out.problems.push(src.problem(
                        &here.key("name"),
                        format!(
                            "unknown builtin tool `{name}`; expected one of {}",
                            BUILTIN_TOOLS.join(", ")
                        ),
                    ));
                }
            }
            ToolSpec::Mcp(mcp) => {
                if mcp.name.contains("__") || mcp.name.len() > MAX_MCP_NAME {
                    out.problems.push(src.problem(
                        &here.key("name"),
                        format!(
                            "an mcp server's name prefixes its tools (`{}__<tool>`): use at most \
                             {MAX_MCP_NAME} characters and no `__`",
                            mcp.name
                        ),
                    ));
                }
                match &mcp.transport {
                    McpTransport::Stdio { command, .. } => {
                        let field = here.key("command");
                        if command.trim().is_empty() {
                            out.problems.push(src.problem(&field, empty(src, &field)));
                        }
                    }
                    McpTransport::Http { url, .. } => {
                        check_url(src, &here.key("url"), url, out);
                    }
                }
                if let Some(include) = &mcp.include {
                    if include.is_empty() {
                        out.problems.push(
                            src.problem(
                                &here.key("include"),
                                "is empty, so no tool of this server would be offered; list tool \
                             names, or leave `include` out to offer them all"
                                    .to_string(),
                            ),
                        );
                    }
                }
                at_least_one(src, &here.key("timeout_seconds"), mcp.timeout_seconds, out);
                let max = mcp.max_response_bytes as u64;
                at_least_one(src, &here.key("max_response_bytes"), max, out);
            }
            ToolSpec::Http { http, .. } => {
                let http_field = here.key("http");
                http.method = http.method.to_ascii_uppercase();
                if !HTTP_METHODS.contains(&http.method.as_str()) {
                    out.problems.push(src.problem(
                        &http_field.key("method"),
                        format!(
                            "unsupported method `{}`; expected one of {}",
                            http.method,
                            HTTP_METHODS.join(", ")
                        ),
                    ));
                }
                let url_field = http_field.key("url");
                if http.url.is_empty() {
                    out.problems
                        .push(src.problem(&url_field, empty(src, &url_field)));
                } else if let Err(why) = check_tool_url(&http.url) {
                    out.problems.push(src.problem(&url_field, why));
                }
                at_least_one(
                    src,
                    &http_field.key("timeout_seconds"),
                    http.timeout_seconds,
                    out,
                );
                let max = http.max_response_bytes as u64;
                at_least_one(src, &http_field.key("max_response_bytes"), max, out);
            }
        }
    }
}

/// An MCP server's name is the prefix of its tools' names, which models cap at 64 characters.
const MAX_MCP_NAME: usize = 24;

fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The scheme and host must be written out; `{{ arg }}` may fill the path and query only,
/// so the model can never choose which server a tool calls.
fn check_tool_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return super::validate::absolute_http_url(url);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains("{{") || authority.contains("{%") {
        return Err(format!(
            "placeholders are allowed in the path and query only; write the host of \
             `{scheme}://{authority}` out"
        ));
    }
    super::validate::absolute_http_url(&format!("{scheme}://{authority}/"))
}

/// The system prompt must compile, and render with sample values, as a minijinja template.
fn check_prompt(template: &str, src: &SourceFile, field: &FieldPath, out: &mut Findings) {
    let env = minijinja::Environment::new();
    let context = minijinja::context! {
        contact_name => "Ana", phone => "5215512345678",
        agent_name => "agent", now => "2025-01-01T12:00:00Z",
    };
    let result = env
        .template_from_str(template)
        .and_then(|t| t.render(context));
    let Err(e) = result else { return };
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let mut problem = src.problem(field, String::new());
    problem.message = match e.line() {
        Some(line) => {
            // A block scalar (`system: |`) starts on the line after its key.
            if let Some(key_line) = problem.line {
                let key_text = src.text.lines().nth(key_line - 1).unwrap_or_default();
                let block = key_text
                    .split_once(':')
                    .is_some_and(|(_, value)| value.trim_start().starts_with(['|', '>']));
                problem.line = Some(if block { key_line + line } else { key_line });
            }
            format!(
                "invalid template ({}) on line {line} of the prompt: {detail}",
                e.kind()
            )
        }
        None => format!("invalid template ({}): {detail}", e.kind()),
    };
    out.problems.push(problem);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_short_identifiers() {
        assert!(is_tool_name("get_weather-v2"));
        assert!(!is_tool_name(""));
        assert!(!is_tool_name("get weather"));
        assert!(!is_tool_name(&"x".repeat(65)));
    }

    #[test]
    fn a_tool_url_may_hold_placeholders_only_after_its_host() {
        assert!(check_tool_url("https://api.example.com/w?city={{ city }}").is_ok());
        assert!(check_tool_url("https://api.example.com/{{ path }}").is_ok());
        assert!(check_tool_url("https://{{ host }}/x").is_err());
        assert!(check_tool_url("{{ url }}").is_err());
        assert!(check_tool_url("ftp://example.com/{{ f }}").is_err());
    }
}
