//! Configs that do not load: every problem named with its file, field and line.

use super::*;

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
fn a_misspelt_agent_key_is_an_error_that_suggests_the_known_key() {
    let extra = "  memmory:\n    conversational:\n      max_turns: 10\n  orchestration:\n    \
                 max_iteration: 3\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", extra))]);
    let all = problems(dir.path(), &no_env);
    let text: Vec<String> = all.iter().map(Problem::to_string).collect();
    assert_eq!(all.len(), 2, "{text:#?}");
    assert_eq!(field(&all[0]), "spec.memmory");
    assert_eq!(
        all[0].message,
        "unknown key `memmory`; did you mean `memory`?"
    );
    assert_eq!(all[0].line, Some(11));
    assert_eq!(field(&all[1]), "spec.orchestration.max_iteration");
    assert_eq!(
        all[1].message,
        "unknown key `max_iteration`; did you mean `max_iterations`?"
    );
}

#[test]
fn a_misspelt_required_key_is_reported_beside_the_missing_one() {
    let text = agent("helper", "").replace("endpoint:", "endpont:");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &text)]);
    let all = problems(dir.path(), &no_env);
    let text: Vec<String> = all.iter().map(Problem::to_string).collect();
    assert!(
        text.iter().any(|p| p.contains(
            "spec.model.primary.endpont: unknown key `endpont`; did you mean `endpoint`?"
        )),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|p| p.contains("spec.model.primary.endpoint: required key is missing")),
        "{text:#?}"
    );
}

#[test]
fn a_misspelt_key_inside_a_tool_names_the_tool_and_the_known_key() {
    let tools = "  tools:\n    - type: http\n      name: t\n      http:\n        url: https://x.test/\n        timout_seconds: 3\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", tools))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.tools[0].http.timout_seconds");
    assert_eq!(
        p.message,
        "unknown key `timout_seconds`; did you mean `timeout_seconds`?"
    );
    assert_eq!(p.line, Some(16));
}

#[test]
fn an_astromesh_name_wagate_reads_under_another_name_is_an_error_naming_it() {
    let extra = "  orchestration:\n    timeout: 60\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", extra))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.orchestration.timeout");
    assert!(p.message.contains("`timeout_seconds`"), "{p}");
    let temperature =
        agent("helper", "").replace("      endpoint:", "      temperature: 0.2\n      endpoint:");
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &temperature)]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.model.primary.temperature");
    assert!(p.message.contains("under `parameters:`"), "{p}");
}

#[test]
fn an_unknown_agent_key_far_from_any_known_one_lists_the_known_keys() {
    let extra = "  prompts:\n    greeting: hi\n";
    let dir = config_dir(CHANNELS, &[("helper.agent.yaml", &agent("helper", extra))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "spec.prompts.greeting");
    assert_eq!(p.message, "unknown key `greeting`; expected one of system");
}

#[test]
fn handoff_hours_in_an_unknown_time_zone_are_an_error_naming_the_field() {
    let channels = format!(
        "{CHANNELS}    handoff:\n      hours: {{timezone: \"Europe/Atlantis\", days: {{mon: \"09:00-18:00\"}}}}\n"
    );
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.handoff.hours.timezone");
    assert!(p.message.contains("IANA"), "{p}");
}

#[test]
fn a_handoff_day_that_is_not_a_range_is_an_error_saying_how_to_write_it() {
    let channels = format!(
        "{CHANNELS}    handoff:\n      hours: {{timezone: \"Europe/Madrid\", days: {{tue: \"9 to 5\"}}}}\n"
    );
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.handoff.hours.days.tue");
    assert!(p.message.contains("09:00-18:00"), "{p}");
}

#[test]
fn a_word_that_both_stops_and_resumes_is_an_error_naming_the_entry() {
    let channels = format!(
        "{CHANNELS}    opt_out:\n      keywords: [STOP, Baja]\n      resume_keywords: [start, \" baja \"]\n"
    );
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.opt_out.resume_keywords[1]");
    assert!(p.message.contains("cannot both stop and resume"), "{p}");
}

#[test]
fn a_misspelt_opt_out_key_is_a_warning_with_the_right_name() {
    let channels = format!("{CHANNELS}    opt_out:\n      resume_keyword: [START]\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = Config::load_with_env(dir.path(), &no_env).expect("a warning, not an error");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("resume_keyword") && w.contains("resume_keywords")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn a_notify_url_that_is_not_absolute_is_an_error() {
    let channels = format!("{CHANNELS}    handoff:\n      notify_url: \"/hooks/slack\"\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(field(&p), "channels.whatsapp.handoff.notify_url");
}

#[test]
fn a_reopen_template_without_its_language_is_an_error_naming_the_field() {
    let channels = format!("{CHANNELS}    window:\n      reopen_template: {{name: hello_again}}\n");
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let p = one_problem(dir.path());
    assert_eq!(
        field(&p),
        "channels.whatsapp.window.reopen_template.language"
    );
    assert!(p.message.contains("en_US"), "{p}");
}

#[test]
fn a_reopen_template_with_name_and_language_loads() {
    let channels = format!(
        "{CHANNELS}    window:\n      reopen_template: {{name: hello_again, language: en_US, components: [{{type: body, parameters: [{{type: text, text: Ana}}]}}]}}\n"
    );
    let dir = config_dir(&channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let config = wagate::config::Config::load(dir.path()).expect("valid");
    let template = &config.whatsapp.window.reopen_template;
    assert!(template.is_set());
    assert_eq!(template.components[0]["parameters"][0]["text"], "Ana");
}
