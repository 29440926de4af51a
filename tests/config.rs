//! Loading config directories as an operator writes them: the seed, the defaults, and mistakes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wagate::config::{
    check_report_with_env, Capability, Config, ConfigError, GuardrailRule, PiiAction, Problem,
    Provider, RoutingStrategy, ToolSpec, TranscriptionProvider,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// An environment made of these pairs only.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

const CHANNELS: &str = "channels:\n  whatsapp:\n    default_agent: helper\n";

fn agent(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: astromesh/v1\nkind: Agent\nmetadata:\n  name: {name}\nspec:\n  model:\n    \
         primary:\n      provider: ollama\n      model: llama3.1:8b\n      endpoint: \
         http://localhost:11434\n{extra_spec}"
    )
}

/// A config directory holding `channels.yaml` and these agent files.
fn config_dir(channels: &str, agents: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("channels.yaml"), channels).expect("write channels");
    std::fs::create_dir(dir.path().join("agents")).expect("agents dir");
    for (file, text) in agents {
        std::fs::write(dir.path().join("agents").join(file), text).expect("write agent");
    }
    dir
}

fn problems(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
    match Config::load_with_env(dir, env) {
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("expected problems, got {other}"),
        Ok(_) => panic!("expected the config to be invalid"),
    }
}

fn one_problem(dir: &Path) -> Problem {
    let mut all = problems(dir, &no_env);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    all.remove(0)
}

fn field(p: &Problem) -> &str {
    p.field.as_deref().unwrap_or("")
}

#[test]
fn the_seed_config_loads_with_values_from_the_environment() {
    let env = env_of(&[
        ("WHATSAPP_VERIFY_TOKEN", "verify-me"),
        ("WHATSAPP_ACCESS_TOKEN", "EAAG-token"),
        ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
        ("WHATSAPP_APP_SECRET", "app-secret"),
        ("OLLAMA_ENDPOINT", "http://gpu-box:11434"),
    ]);
    let config = Config::load_with_env(&seed_dir(), &env).expect("seed loads");
    let w = &config.whatsapp;
    assert_eq!(w.verify_token.expose(), "verify-me");
    assert_eq!(w.access_token.expose(), "EAAG-token");
    assert_eq!(w.phone_number_id, "106540352242922");
    assert!(!w.dry_run());
    assert_eq!(w.default_agent, "whatsapp-assistant");
    let assistant = &config.agents["whatsapp-assistant"];
    assert_eq!(
        assistant.spec.model.primary.endpoint,
        "http://gpu-box:11434"
    );
    assert_eq!(assistant.spec.model.primary.model, "llava:7b");
    let memory = assistant
        .spec
        .memory
        .conversational
        .as_ref()
        .expect("memory");
    assert_eq!(memory.max_turns, 30);
    assert_eq!(
        assistant.spec.guardrails.input,
        vec![
            GuardrailRule::PiiDetection {
                action: PiiAction::Redact
            },
            GuardrailRule::MaxLength { max_chars: 2000 }
        ]
    );
    assert_eq!(
        config.agent_files["whatsapp-assistant"],
        seed_dir().join("agents/whatsapp-assistant.agent.yaml")
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn the_seed_config_without_environment_is_a_dry_run_with_default_endpoints() {
    let config = Config::load_with_env(&seed_dir(), &no_env).expect("seed loads");
    assert!(config.whatsapp.dry_run());
    assert!(config.whatsapp.app_secret.is_empty());
    let primary = &config.agents["whatsapp-assistant"].spec.model.primary;
    assert_eq!(primary.endpoint, "http://localhost:11434");
    let warning = config.warnings.join("\n");
    assert!(
        warning.contains("WHATSAPP_ACCESS_TOKEN (channels.whatsapp.access_token)"),
        "{warning}"
    );
}

#[test]
fn every_optional_channel_key_has_its_documented_default() {
    let config = Config::load_with_env(&fixture("defaults"), &no_env).expect("loads");
    let w = &config.whatsapp;
    assert!(w.verify_token.is_empty() && w.access_token.is_empty() && w.app_secret.is_empty());
    assert_eq!(w.phone_number_id, "");
    assert_eq!(
        (w.rate_limit.window_seconds, w.rate_limit.max_messages),
        (60, 30)
    );
    assert_eq!(w.graph_api_base, "https://graph.facebook.com");
    assert_eq!(w.graph_api_version, "v25.0");
    assert!(w.numbers.is_empty());
    assert_eq!(w.debounce_ms, 0);
    assert_eq!(
        w.error_reply,
        "Sorry, something went wrong on our side. Please try again in a moment."
    );
    assert_eq!(w.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(w.max_concurrent_turns, 64);
    assert_eq!(w.shutdown_grace_seconds, 20);
    let m = &w.media_max_bytes;
    assert_eq!((m.image, m.audio, m.video), (5 << 20, 16 << 20, 16 << 20));
    assert_eq!((m.document, m.sticker), (100 << 20, 512 << 10));
}

#[test]
fn every_optional_agent_key_has_its_documented_default() {
    let config = Config::load_with_env(&fixture("defaults"), &no_env).expect("loads");
    let a = &config.agents["minimal"];
    assert_eq!(a.metadata.version, None);
    assert!(a.metadata.labels.is_empty());
    let primary = &a.spec.model.primary;
    assert_eq!(primary.provider, Provider::Openai);
    assert!(primary.api_key.is_empty());
    assert!(primary.parameters.is_empty());
    assert_eq!(primary.capabilities, None);
    assert_eq!(primary.timeout_seconds, 60);
    assert!(a.spec.model.fallback.is_none());
    assert_eq!(
        a.spec.model.routing.strategy,
        RoutingStrategy::CapabilityMatch
    );
    assert_eq!(a.spec.prompts.system, "");
    let o = &a.spec.orchestration;
    assert_eq!(
        (o.pattern.as_str(), o.max_iterations, o.timeout_seconds),
        ("react", 5, 30)
    );
    let mem = a
        .spec
        .memory
        .conversational
        .as_ref()
        .expect("memory section present");
    assert_eq!(
        (mem.backend.as_str(), mem.strategy.as_str()),
        ("sqlite", "sliding_window")
    );
    assert_eq!((mem.max_turns, mem.ttl), (20, 86_400));
    assert_eq!(
        a.spec.guardrails.input,
        vec![GuardrailRule::PiiDetection {
            action: PiiAction::Redact
        }]
    );
    assert!(a.spec.guardrails.output.is_empty());
    match &a.spec.tools[..] {
        [ToolSpec::Builtin {
            name,
            description: None,
        }, ToolSpec::Http {
            name: http_name,
            description,
            parameters,
            http,
        }] => {
            assert_eq!(name, "current_time");
            assert_eq!(http_name, "lookup");
            assert_eq!(description, "");
            assert_eq!(
                parameters,
                &serde_json::json!({"type": "object", "properties": {}})
            );
            assert_eq!(http.method, "GET");
            assert!(http.headers.is_empty() && http.body.is_none());
            assert_eq!(
                (http.timeout_seconds, http.max_response_bytes),
                (10, 16 * 1024)
            );
        }
        other => panic!("unexpected tools {other:?}"),
    }
    let t = a.spec.transcription.as_ref().expect("transcription");
    assert_eq!(t.provider, TranscriptionProvider::WhisperCpp);
    assert!(
        t.model.is_none() && t.language.is_none() && t.prompt.is_none() && t.api_key.is_empty()
    );
    assert_eq!((t.max_seconds, t.timeout_seconds), (300, 60));
}

#[test]
fn an_agent_without_memory_section_has_no_memory() {
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert!(config.agents["helper"].spec.memory.conversational.is_none());
}

#[test]
fn a_yaml_syntax_error_names_the_file_and_line() {
    let text = agent("helper", "  prompts:\n    system: [unclosed\n");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &text)]);
    let all = problems(dir.path(), &no_env);
    let syntax = all
        .iter()
        .find(|p| p.message.contains("YAML syntax error"))
        .expect("syntax");
    assert!(syntax.file.ends_with("agents/helper.agent.yaml"));
    // The parser stops at the end of the file, and names where the list was opened.
    assert_eq!(syntax.line, Some(13), "{syntax}");
    assert!(syntax.message.contains("line 12 column 13"), "{syntax}");
    assert!(syntax.column.is_some());
    // The broken file's agent is reported once, not also as "missing" from channels.yaml.
    assert_eq!(all.len(), 1, "{all:#?}");
}

#[test]
fn a_wrong_type_names_the_file_the_field_path_and_its_line() {
    let channels = format!("{CHANNELS}    rate_limit:\n      max_messages: lots\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert!(p.file.ends_with("channels.yaml"));
    assert_eq!(field(&p), "channels.whatsapp.rate_limit.max_messages");
    assert_eq!(p.line, Some(5));
    assert!(p.message.contains("whole number"), "{p}");
}

#[test]
fn a_wrong_type_inside_a_tool_names_the_exact_field() {
    let tools = "  tools:\n    - type: http\n      name: t\n      http:\n        url: https://x.test/\n        timeout_seconds: soon\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", tools))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.tools[0].http.timeout_seconds");
    assert_eq!(p.line, Some(16));
}

#[test]
fn a_number_written_as_a_variable_is_read_as_a_number() {
    let channels = format!("{CHANNELS}    debounce_ms: ${{DEBOUNCE:-250}}\n    rate_limit:\n      max_messages: \"${{MAX}}\"\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = Config::load_with_env(dir.path(), &env_of(&[("MAX", "12")])).expect("loads");
    assert_eq!(config.whatsapp.debounce_ms, 250);
    assert_eq!(config.whatsapp.rate_limit.max_messages, 12);
}

#[test]
fn phone_number_ids_written_without_quotes_are_read_as_text() {
    let channels = format!(
        "{CHANNELS}    phone_number_id: 106540352242922\n    numbers:\n      106540352242922: helper\n"
    );
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert_eq!(config.whatsapp.phone_number_id, "106540352242922");
    assert_eq!(
        config.whatsapp.agent_for_number("106540352242922"),
        Some("helper")
    );
}

#[test]
fn an_unknown_guardrail_type_is_an_error_listing_the_known_types() {
    let guard = "  guardrails:\n    output:\n      - type: pii\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", guard))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.guardrails.output[0].type");
    assert_eq!(
        p.message,
        "unknown guardrail type `pii`; expected one of pii_detection, max_length"
    );
    assert_eq!(p.line, Some(13));
}

#[test]
fn a_max_length_guardrail_without_max_chars_is_an_error() {
    let guard = "  guardrails:\n    input:\n      - type: max_length\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", guard))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.guardrails.input[0].max_chars");
}

#[test]
fn a_missing_default_agent_lists_the_available_agents() {
    let channels = "channels:\n  whatsapp:\n    default_agent: nobody\n";
    let agents = [
        ("a.agent.yaml", agent("alpha", "")),
        ("b.agent.yaml", agent("beta", "")),
    ];
    let agents: Vec<(&str, &str)> = agents.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let dir = config_dir(channels, &agents);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.default_agent");
    assert_eq!(
        p.message,
        "agent `nobody` not found; available agents: alpha, beta"
    );
    assert_eq!(p.line, Some(3));
}

#[test]
fn a_default_agent_with_no_agent_files_says_where_to_put_them() {
    let dir = config_dir(CHANNELS, &[("notes.yaml", "x: 1\n")]);
    let p = one_problem(dir.path());
    assert!(p.message.contains("no agents were loaded"), "{p}");
    let config_warnings = check_report_with_env(dir.path(), &no_env).0;
    assert!(
        config_warnings.contains("must be named NAME.agent.yaml"),
        "{config_warnings}"
    );
}

#[test]
fn numbers_pointing_to_a_missing_agent_is_an_error() {
    let channels = format!("{CHANNELS}    numbers:\n      \"111\": helper\n      \"222\": sales\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.numbers.222");
    assert_eq!(
        p.message,
        "agent `sales` not found; available agents: helper"
    );
    assert_eq!(p.line, Some(6));
}

#[test]
fn an_invalid_prompt_template_is_reported_with_its_line_in_the_file() {
    let prompt = "  prompts:\n    system: |\n      Hello.\n      {{ contact_name \n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", prompt))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.prompts.system");
    assert!(p.message.contains("invalid template"), "{p}");
    assert!(matches!(p.line, Some(13..=14)), "{p}");
}

#[test]
fn problems_in_several_files_are_all_reported_together() {
    let all = problems(&fixture("many-problems"), &no_env);
    let text: Vec<String> = all.iter().map(Problem::to_string).collect();
    let has = |file: &str, what: &str| {
        all.iter()
            .any(|p| p.file.ends_with(file) && p.to_string().contains(what))
    };
    assert!(
        has("agents/broken.agent.yaml", "YAML syntax error"),
        "{text:#?}"
    );
    assert!(
        has("agents/sales.agent.yaml", "spec.model.primary.endpoint"),
        "{text:#?}"
    );
    assert!(
        has("agents/sales.agent.yaml", "spec.prompts.system"),
        "{text:#?}"
    );
    assert!(
        has("agents/support.agent.yaml", "unknown guardrail type `pii`"),
        "{text:#?}"
    );
    assert!(has(
        "channels.yaml",
        "channels.whatsapp.rate_limit.max_messages: must be at least 1"
    ));
    assert_eq!(all.len(), 5, "{text:#?}");
    let message = ConfigError::Invalid(all).to_string();
    assert_eq!(message.lines().count(), 6, "{message}");
}

#[test]
fn unknown_channel_keys_are_warnings_that_suggest_the_known_key() {
    let channels =
        format!("{CHANNELS}    debounce_msec: 500\n    rate_limit:\n      max_mesages: 5\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert_eq!(config.whatsapp.debounce_ms, 0);
    let all = config.warnings.join("\n");
    assert!(
        all.contains(
            "channels.whatsapp.debounce_msec: unknown key, ignored; did you mean `debounce_ms`?"
        ),
        "{all}"
    );
    assert!(
        all.contains(":6: channels.whatsapp.rate_limit.max_mesages"),
        "{all}"
    );
}

#[test]
fn unknown_agent_keys_of_the_astromesh_schema_are_accepted_silently() {
    let extra = "  permissions:\n    allowed_actions: [search]\n  identity:\n    display_name: H\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", extra))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn secrets_never_appear_in_the_debug_output_of_the_config() {
    let channels = "channels:\n  whatsapp:\n    default_agent: helper\n    verify_token: ${V}\n    access_token: ${A}\n    app_secret: ${S}\n";
    let extra = "      api_key: ${K}\n  tools:\n    - type: http\n      name: t\n      http:\n        url: https://x.test/q?key=${T}\n        headers:\n          Authorization: Bearer ${H}\n        body: {token: '${B}'}\n";
    let text = agent("helper", "").replace(
        "      endpoint: http://localhost:11434\n",
        &format!("      endpoint: http://localhost:11434\n{extra}"),
    );
    let dir = config_dir(channels, &[("helper.agent.yaml", &text)]);
    let secrets = [
        "s3cr3t-verify",
        "s3cr3t-access",
        "s3cr3t-app",
        "s3cr3t-key",
        "s3cr3t-query",
        "s3cr3t-header",
        "s3cr3t-body",
    ];
    let env = env_of(&[
        ("V", secrets[0]),
        ("A", secrets[1]),
        ("S", secrets[2]),
        ("K", secrets[3]),
        ("T", secrets[4]),
        ("H", secrets[5]),
        ("B", secrets[6]),
    ]);
    let config = Config::load_with_env(dir.path(), &env).expect("loads");
    assert_eq!(config.whatsapp.app_secret.expose(), secrets[2]);
    let debug = format!("{config:?}");
    let (report, valid) = check_report_with_env(dir.path(), &env);
    assert!(valid, "{report}");
    for secret in secrets {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
        assert!(!report.contains(secret), "{secret} leaked in check report");
    }
    assert!(debug.contains("Authorization"));
}

#[test]
fn an_unterminated_placeholder_names_the_file_and_field() {
    let channels =
        "channels:\n  whatsapp:\n    default_agent: helper\n    access_token: \"${TOKEN\"\n";
    let dir = config_dir(channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert!(p.file.ends_with("channels.yaml"));
    assert_eq!(field(&p), "channels.whatsapp.access_token");
    assert_eq!(p.line, Some(4));
    assert!(p.message.contains("unterminated `${`"), "{p}");
}

#[test]
fn an_empty_model_names_the_variable_it_came_from() {
    let text = agent("helper", "").replace("model: llama3.1:8b", "model: ${LLM_MODEL}");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &text)]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.model.primary.model");
    assert!(p.message.contains("${LLM_MODEL} is unset or empty"), "{p}");
}

#[test]
fn the_misspelt_astromech_api_version_is_accepted_with_a_warning() {
    let text = agent("helper", "").replace("astromesh/v1", "astromech/v1");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &text)]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert!(
        config.warnings.iter().any(|w| w.contains("astromech/v1")),
        "{:?}",
        config.warnings
    );
    let (report, valid) = check_report_with_env(dir.path(), &no_env);
    assert!(valid && report.contains("astromech/v1"), "{report}");
}

#[test]
fn another_api_version_or_kind_is_rejected() {
    let text = agent("helper", "")
        .replace("astromesh/v1", "astromesh/v2")
        .replace("kind: Agent", "kind: Tool");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &text)]);
    let all = problems(dir.path(), &no_env);
    let fields: Vec<&str> = all.iter().map(field).collect();
    assert_eq!(fields, vec!["apiVersion", "kind"]);
    assert!(all[0].message.contains("expected `astromesh/v1`"));
}

#[test]
fn two_files_with_the_same_agent_name_are_an_error() {
    let dir = config_dir(
        CHANNELS,
        &[
            ("a.agent.yaml", &agent("helper", "")),
            ("b.agent.yaml", &agent("helper", "")),
        ],
    );
    let p = one_problem(dir.path());
    assert!(p.file.ends_with("b.agent.yaml"));
    assert_eq!(field(&p), "metadata.name");
    assert!(p.message.contains("a.agent.yaml"), "{p}");
}

#[test]
fn tools_must_be_known_unique_and_call_absolute_urls() {
    let tools = "  tools:\n    - type: builtin\n      name: weather\n    - type: http\n      name: get\n      http: {method: fetch, url: /relative}\n    - type: http\n      name: get\n      http: {method: post, url: 'https://{{ host }}/x'}\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", tools))]);
    let all = problems(dir.path(), &no_env);
    let got: Vec<String> = all
        .iter()
        .map(|p| format!("{}: {}", field(p), p.message))
        .collect();
    let has = |f: &str, m: &str| got.iter().any(|g| g.starts_with(f) && g.contains(m));
    assert!(
        has(
            "spec.tools[0].name",
            "unknown builtin tool `weather`; expected one of current_time"
        ),
        "{got:#?}"
    );
    assert!(
        has("spec.tools[1].http.method", "unsupported method `FETCH`"),
        "{got:#?}"
    );
    assert!(
        has("spec.tools[1].http.url", "is a path, not an absolute URL"),
        "{got:#?}"
    );
    assert!(
        has("spec.tools[2].name", "duplicate tool name `get`"),
        "{got:#?}"
    );
    assert!(
        has(
            "spec.tools[2].http.url",
            "placeholders are allowed in the path and query only"
        ),
        "{got:#?}"
    );
    assert_eq!(all.len(), 5, "{got:#?}");
}

#[test]
fn a_lowercase_http_method_is_accepted_as_uppercase() {
    let tools = "  tools:\n    - type: http\n      name: create\n      http: {method: post, url: 'https://api.test/items'}\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", tools))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    let ToolSpec::Http { http, .. } = &config.agents["helper"].spec.tools[0] else {
        panic!("http tool")
    };
    assert_eq!(http.method, "POST");
}

#[test]
fn values_wagate_cannot_run_with_are_errors() {
    let channels = format!("{CHANNELS}    graph_api_version: \"25.0\"\n    graph_api_base: graph.facebook.com\n    rate_limit:\n      window_seconds: 0\n");
    let spec = "  orchestration:\n    pattern: plan_and_execute\n    max_iterations: 0\n    timeout_seconds: 0\n  memory:\n    conversational:\n      backend: redis\n      strategy: summary\n      max_turns: 0\n  guardrails:\n    input:\n      - type: max_length\n        max_chars: 0\n";
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", spec))]);
    let all = problems(dir.path(), &no_env);
    let mut fields: Vec<&str> = all.iter().map(field).collect();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "channels.whatsapp.graph_api_base",
            "channels.whatsapp.graph_api_version",
            "channels.whatsapp.rate_limit.window_seconds",
            "spec.guardrails.input[0].max_chars",
            "spec.memory.conversational.backend",
            "spec.memory.conversational.max_turns",
            "spec.memory.conversational.strategy",
            "spec.orchestration.max_iterations",
            "spec.orchestration.pattern",
            "spec.orchestration.timeout_seconds",
        ]
    );
}

#[test]
fn declared_capabilities_are_read_and_unknown_ones_rejected() {
    let caps = agent("helper", "").replace(
        "      endpoint: http://localhost:11434\n",
        "      endpoint: http://localhost:11434\n      capabilities: [vision, tools]\n",
    );
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &caps)]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    let declared = config.agents["helper"]
        .spec
        .model
        .primary
        .capabilities
        .clone();
    assert_eq!(declared, Some(vec![Capability::Vision, Capability::Tools]));

    let bad = caps.replace("[vision, tools]", "[vision, audio]");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &bad)]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.model.primary.capabilities[1]");
    assert_eq!(
        p.message,
        "unknown capability `audio`; expected one of vision, tools"
    );
}

#[test]
fn a_missing_directory_or_channels_file_says_how_to_point_at_the_config() {
    let missing = Config::load_with_env(Path::new("/nonexistent/wagate-config"), &no_env);
    let message = missing.expect_err("no dir").to_string();
    assert!(
        message.contains("--config DIR") && message.contains("WAGATE_CONFIG"),
        "{message}"
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let err = Config::load_with_env(empty.path(), &no_env).expect_err("no channels.yaml");
    assert!(matches!(err, ConfigError::ChannelsMissing(ref p) if p.ends_with("channels.yaml")));
    assert!(err.to_string().contains("WAGATE_CONFIG"));
}

#[test]
fn the_check_report_summarizes_a_valid_config_without_showing_secrets() {
    let env = env_of(&[
        ("WHATSAPP_ACCESS_TOKEN", "EAAG-token"),
        ("WHATSAPP_PHONE_NUMBER_ID", "1065"),
    ]);
    let (report, valid) = check_report_with_env(&seed_dir(), &env);
    assert!(valid, "{report}");
    for expected in [
        "is valid",
        "phone_number_id: 1065",
        "verify_token empty, access_token set, app_secret empty",
        "sending: live, through https://graph.facebook.com/v25.0",
        "signature check: off",
        "default agent: whatsapp-assistant",
        "model primary: ollama/llava:7b at http://localhost:11434, capabilities: inferred",
        "model fallback: ollama/llama3.1:8b",
        "guardrails input: pii_detection (redact), max_length (2000 chars)",
        "memory: sqlite sliding_window, last 30 messages",
        "WHATSAPP_APP_SECRET",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in\n{report}"
        );
    }
    assert!(!report.contains("EAAG-token"));
}

#[test]
fn the_check_report_of_an_invalid_config_lists_each_problem_and_fails() {
    let (report, valid) = check_report_with_env(&fixture("many-problems"), &no_env);
    assert!(!valid);
    assert!(
        report.starts_with("invalid configuration (5 problems):"),
        "{report}"
    );
    assert!(report.contains("did you mean `debounce_ms`?"), "{report}");
}
