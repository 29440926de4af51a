//! The config loader on fuzzed `channels.yaml` and agent file text: it may refuse a config (with
//! problems to print), never panic, and `wagate check` renders whatever it finds.
//!
//! One input holds both files, split at the first `\n---8<---\n` line: the channels file before,
//! the agent file after (no agent file when the marker is missing). Values of `${VAR}` come from
//! a small fixed environment so expansion, defaults and unset variables are all reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use wagate::config::{check_report_with_env, expand::expand_str, Config};

const MARKER: &str = "\n---8<---\n";

/// A directory of this process, rewritten for every input (creating one per input is slow).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wagate-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("agents")).expect("temp dir");
        dir
    })
}

fn env(name: &str) -> Option<String> {
    match name {
        "EMPTY" => Some(String::new()),
        "NUMBER" => Some("42".to_owned()),
        "FLAG" => Some("true".to_owned()),
        "URL" => Some("http://127.0.0.1:11434/".to_owned()),
        "YAML" => Some("a: [b, {c: d}]\n- e".to_owned()),
        "DOLLAR" => Some("${NUMBER}".to_owned()),
        n if n.starts_with('S') => Some(format!("value-of-{n}")),
        _ => None,
    }
}

fuzz_target!(|text: &str| {
    let (channels, agent) = match text.split_once(MARKER) {
        Some((channels, agent)) => (channels, Some(agent)),
        None => (text, None),
    };
    let _ = expand_str(channels, &env);
    let dir = dir();
    let agent_path = dir.join("agents").join("fuzz.agent.yaml");
    std::fs::write(dir.join("channels.yaml"), channels).expect("write channels.yaml");
    match agent {
        Some(agent) => std::fs::write(&agent_path, agent).expect("write agent file"),
        None => {
            let _ = std::fs::remove_file(&agent_path);
        }
    }
    match Config::load_with_env(dir, &env) {
        Ok(config) => assert!(config.agents.len() <= 1),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    let (report, _ok) = check_report_with_env(dir, &env);
    assert!(!report.is_empty());
});
