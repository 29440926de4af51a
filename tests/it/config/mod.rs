//! Loading config directories as an operator writes them: the seed, the defaults, and mistakes.

mod loading;
mod mistakes;
mod report;

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
