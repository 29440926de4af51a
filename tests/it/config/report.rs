//! What `wagate check` prints.

use super::*;

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
        "operator console: off (console.token is empty)",
        "handoff: 0 keyword(s), back to the agent after 86400 s without an operator reply",
        "opt-out: keywords [STOP], resume keywords [START]",
        "model primary: ollama/llama3.1:8b at http://localhost:11434, capabilities: inferred",
        "model fallback: ollama/llava:7b at http://localhost:11434, capabilities: vision (declared)",
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

#[test]
fn a_half_set_live_config_names_the_missing_variable() {
    let channels = "channels:\n  whatsapp:\n    default_agent: helper\n    access_token: \
                    \"${WHATSAPP_ACCESS_TOKEN}\"\n    phone_number_id: \"${WHATSAPP_PHONE_NUMBER_ID}\"\n";
    let dir = config_dir(channels, &[("helper.agent.yaml", &agent("helper", ""))]);
    let env = env_of(&[("WHATSAPP_ACCESS_TOKEN", "EAAG-token")]);
    let config = Config::load_with_env(dir.path(), &env).expect("loads");
    let all = config.warnings.join("\n");
    assert!(
        all.contains(
            "channels.whatsapp.phone_number_id: is empty because ${WHATSAPP_PHONE_NUMBER_ID} \
             is unset or empty"
        ),
        "{all}"
    );
    assert!(all.contains("wagate runs in dry run"), "{all}");
    let (report, ok) = check_report_with_env(dir.path(), &env);
    assert!(ok, "{report}");
    assert!(
        report.contains("sending: dry run (phone_number_id is empty)"),
        "{report}"
    );
}
