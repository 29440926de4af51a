//! Configs that load: the seed, every default, and what is read leniently.

use super::*;

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
    assert_eq!(assistant.spec.model.primary.model, "llama3.1:8b");
    // The shipped agent answers choices with reply buttons (its text model takes tools; the
    // vision model, for pictures, is declared without them).
    let tools: Vec<&str> = assistant.spec.tools.iter().map(|t| t.name()).collect();
    assert_eq!(tools, ["reply_buttons"]);
    assert!(assistant.spec.prompts.system.contains("reply_buttons"));
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
    assert_eq!(a.metadata.namespace, None);
    assert!(a.spec.identity.is_none());
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
fn every_astromesh_key_wagate_deliberately_ignores_is_accepted() {
    // The keys of the Astromesh schema wagate does not act on, and `context_window` and
    // `spec.whatsapp`, which other features read.
    let text = "apiVersion: astromesh/v1
kind: Agent
metadata:
  name: helper
  annotations: {owner: team}
spec:
  identity: {display_name: H, avatar: bot}
  model:
    primary:
      provider: ollama
      model: llama3.1:8b
      endpoint: http://localhost:11434
      context_window: 8192
    routing: {strategy: capability_match, health_check_interval: 30}
  memory:
    semantic: {backend: chromadb}
    episodic: {}
  observability: {tracing: true}
  knowledge: {pipeline: docs}
  output_schema: {score: {type: integer}}
  chain: {mode: sequential}
  permissions: {allowed_actions: [search]}
  whatsapp: {reactions_to_agent: true}
";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", text)]);
    let config = Config::load_with_env(dir.path(), &no_env).unwrap_or_else(|e| panic!("{e}"));
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
fn trailing_slashes_on_base_urls_are_dropped() {
    let channels = format!("{CHANNELS}    graph_api_base: https://graph.example.test/\n");
    let text = agent("helper", "").replace("http://localhost:11434", "http://localhost:11434/");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &text)]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("loads");
    assert_eq!(config.whatsapp.graph_api_base, "https://graph.example.test");
    let primary = &config.agents["helper"].spec.model.primary;
    assert_eq!(primary.endpoint, "http://localhost:11434");
}

#[test]
fn opt_out_has_its_documented_defaults_and_reactions_are_not_told_to_the_agent() {
    let config = Config::load_with_env(&fixture("defaults"), &no_env).expect("loads");
    let o = &config.whatsapp.opt_out;
    assert_eq!(o.keywords, ["STOP"]);
    assert_eq!(o.resume_keywords, ["START"]);
    assert_eq!(
        o.reply,
        "You will not receive more messages from us. Send START to talk again."
    );
    assert!(config
        .agents
        .values()
        .all(|a| !a.spec.whatsapp.reactions_to_agent));
}

#[test]
fn the_console_is_off_and_handoff_has_its_documented_defaults() {
    let config = Config::load_with_env(&fixture("defaults"), &no_env).expect("loads");
    let w = &config.whatsapp;
    assert!(w.console.token.is_empty(), "operator API and console off");
    let h = &w.handoff;
    assert_eq!(
        h.message,
        "I'm passing you to a person from our team. They will reply here shortly."
    );
    assert!(h.keywords.is_empty());
    assert_eq!(h.release_after_seconds, 86400);
    assert!(!h.hours.is_set());
    assert_eq!(
        h.closed_message,
        "Our team is away right now; we will reply when we are back."
    );
    assert_eq!(h.notify_url, "");
}
