//! `wagate check`: the report on a config directory. Secrets are shown only as set or empty,
//! and URLs without credentials or query strings.

use super::agent::{
    AgentFile, Capability, GuardrailRule, ModelEndpoint, RoutingStrategy, ToolSpec,
    TranscriptionProvider,
};
use super::error::ConfigError;
use super::expand::{process_env, Env};
use super::load::load_report;
use super::validate::display_url;
use super::Config;
use crate::secret::Secret;
use std::fmt::Write as _;
use std::path::Path;

/// What `wagate check` prints for `dir`, and whether the config is valid (exit 0) or not (exit 1).
pub fn check_report(dir: &Path) -> (String, bool) {
    check_report_with_env(dir, &process_env)
}

/// [`check_report`] with `${VAR}` taken from `env`.
pub fn check_report_with_env(dir: &Path, env: Env) -> (String, bool) {
    let report = match load_report(dir, env) {
        Ok(report) => report,
        Err(e) => return (format!("{e}\n"), false),
    };
    let mut out = String::new();
    let valid = report.problems.is_empty();
    match &report.config {
        Some(config) if valid => summary(config, &mut out),
        _ => {
            let _ = writeln!(out, "{}", ConfigError::Invalid(report.problems));
        }
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "warnings ({}):", report.warnings.len());
        for warning in &report.warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    (out, valid)
}

fn summary(config: &Config, out: &mut String) {
    let w = &config.whatsapp;
    let _ = writeln!(out, "config directory {} is valid", config.dir.display());
    let _ = writeln!(out, "channel whatsapp");
    let id = if w.phone_number_id.is_empty() {
        "(empty)"
    } else {
        &w.phone_number_id
    };
    let _ = writeln!(out, "  phone_number_id: {id}");
    let _ = writeln!(
        out,
        "  secrets: verify_token {}, access_token {}, app_secret {}",
        set(&w.verify_token),
        set(&w.access_token),
        set(&w.app_secret)
    );
    let graph = format!("{}/{}", display_url(&w.graph_api_base), w.graph_api_version);
    if w.dry_run() {
        let empty = match (w.access_token.is_empty(), w.phone_number_id.is_empty()) {
            (true, true) => "access_token and phone_number_id are empty",
            (true, false) => "access_token is empty",
            _ => "phone_number_id is empty",
        };
        let _ = writeln!(
            out,
            "  sending: dry run ({empty}): replies are logged, not sent"
        );
    } else {
        let _ = writeln!(out, "  sending: live, through {graph}");
    }
    let signature = if w.app_secret.is_empty() {
        "off (app_secret is empty)"
    } else {
        "on"
    };
    let _ = writeln!(out, "  signature check: {signature}");
    let _ = writeln!(
        out,
        "  rate limit: {} messages per {} s",
        w.rate_limit.max_messages, w.rate_limit.window_seconds
    );
    let _ = writeln!(out, "  debounce: {} ms", w.debounce_ms);
    let console = if w.console.token.is_empty() {
        "off (console.token is empty)"
    } else {
        "on at /console/ and /v1/conversations (keep them off the public webhook route)"
    };
    let _ = writeln!(out, "  operator console: {console}");
    let hours = if w.handoff.hours.is_set() {
        format!("hours in {}", w.handoff.hours.timezone)
    } else {
        "no opening hours".to_string()
    };
    let _ = writeln!(
        out,
        "  handoff: {} keyword(s), back to the agent after {} s without an operator reply, {hours}",
        w.handoff.keywords.len(),
        w.handoff.release_after_seconds
    );
    let _ = writeln!(
        out,
        "  opt-out: keywords [{}], resume keywords [{}]",
        w.opt_out.keywords.join(", "),
        w.opt_out.resume_keywords.join(", ")
    );
    let _ = writeln!(out, "  default agent: {}", w.default_agent);
    if w.numbers.is_empty() {
        let _ = writeln!(
            out,
            "  numbers: none (every message goes to the default agent)"
        );
    } else {
        let _ = writeln!(out, "  numbers:");
        for (number, agent) in &w.numbers {
            let _ = writeln!(out, "    {number} -> {agent}");
        }
    }
    let _ = writeln!(out, "agents ({}):", config.agents.len());
    for (name, agent) in &config.agents {
        let file = config
            .agent_files
            .get(name)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "  {name} ({file})");
        agent_summary(agent, out);
    }
}

fn agent_summary(agent: &AgentFile, out: &mut String) {
    let spec = &agent.spec;
    model_line("primary", &spec.model.primary, out);
    if let Some(fallback) = &spec.model.fallback {
        model_line("fallback", fallback, out);
    }
    let _ = writeln!(
        out,
        "    routing: {}",
        strategy(spec.model.routing.strategy)
    );
    let o = &spec.orchestration;
    let _ = writeln!(
        out,
        "    orchestration: {}, at most {} model calls, {} s per turn",
        o.pattern, o.max_iterations, o.timeout_seconds
    );
    match &spec.memory.conversational {
        Some(m) => {
            let _ = writeln!(
                out,
                "    memory: {} {}, last {} messages, kept {} s",
                m.backend, m.strategy, m.max_turns, m.ttl
            );
        }
        None => {
            let _ = writeln!(
                out,
                "    memory: none (each turn sees only its own messages)"
            );
        }
    }
    let _ = writeln!(
        out,
        "    guardrails input: {}",
        guardrails(&spec.guardrails.input)
    );
    let _ = writeln!(
        out,
        "    guardrails output: {}",
        guardrails(&spec.guardrails.output)
    );
    let tools: Vec<String> = spec.tools.iter().map(tool).collect();
    let tools = if tools.is_empty() {
        "none".to_string()
    } else {
        tools.join("; ")
    };
    let _ = writeln!(out, "    tools: {tools}");
    if let Some(t) = &spec.transcription {
        let provider = match t.provider {
            TranscriptionProvider::Openai => "openai",
            TranscriptionProvider::WhisperCpp => "whisper_cpp",
        };
        let model = t.model.as_deref().unwrap_or("(default model)");
        let _ = writeln!(
            out,
            "    transcription: {provider} {model} at {}, api_key {}",
            display_url(&t.endpoint),
            set(&t.api_key)
        );
    }
}

fn model_line(role: &str, m: &ModelEndpoint, out: &mut String) {
    let provider = m.provider.name();
    let capabilities = match &m.capabilities {
        Some(list) if list.is_empty() => "capabilities: none (declared)".to_string(),
        Some(list) => {
            let names: Vec<&str> = list
                .iter()
                .map(|c| match c {
                    Capability::Vision => "vision",
                    Capability::Tools => "tools",
                })
                .collect();
            format!("capabilities: {} (declared)", names.join(", "))
        }
        None => "capabilities: inferred from the model name".to_string(),
    };
    let key = if m.api_key.is_empty() {
        ""
    } else {
        ", api_key set"
    };
    let _ = writeln!(
        out,
        "    model {role}: {provider}/{} at {}, {capabilities}{key}",
        m.model,
        display_url(&m.endpoint)
    );
}

fn strategy(s: RoutingStrategy) -> &'static str {
    match s {
        RoutingStrategy::CapabilityMatch => "capability_match",
        RoutingStrategy::RegistrationOrder => "registration_order",
        RoutingStrategy::CostOptimized => "cost_optimized (runs as registration order)",
        RoutingStrategy::LatencyOptimized => "latency_optimized (runs as registration order)",
        RoutingStrategy::QualityFirst => "quality_first (runs as registration order)",
        RoutingStrategy::RoundRobin => "round_robin (runs as registration order)",
    }
}

fn guardrails(rules: &[GuardrailRule]) -> String {
    if rules.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = rules
        .iter()
        .map(|rule| match rule {
            GuardrailRule::PiiDetection { .. } => "pii_detection (redact)".to_string(),
            GuardrailRule::MaxLength { max_chars } => format!("max_length ({max_chars} chars)"),
        })
        .collect();
    names.join(", ")
}

fn tool(spec: &ToolSpec) -> String {
    match spec {
        ToolSpec::Builtin { name, .. } => format!("{name} (builtin)"),
        ToolSpec::Http { name, http, .. } => {
            format!("{name} (http {} {})", http.method, display_url(&http.url))
        }
        ToolSpec::Mcp(mcp) => match &mcp.transport {
            crate::config::McpTransport::Stdio { command, .. } => {
                format!("{} (mcp, stdio `{command}`)", mcp.name)
            }
            crate::config::McpTransport::Http { url, .. } => {
                format!("{} (mcp, {})", mcp.name, display_url(url))
            }
        },
    }
}

fn set(secret: &Secret) -> &'static str {
    if secret.is_empty() {
        "empty"
    } else {
        "set"
    }
}
