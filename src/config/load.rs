//! Loading a config directory: every file is read, expanded, parsed and checked, and every
//! problem in every file is collected before deciding, so one run of `wagate check` shows them all.

use super::agent::AgentFile;
use super::agent_keys::skipped_key_problem;
use super::channels::ChannelsFile;
use super::error::{ConfigError, Problem};
use super::expand::{process_env, Env};
use super::parse::{deserialize, deserialize_noting_skipped, read_source, SourceFile};
use super::path::FieldPath;
use super::validate::{
    check_channel, check_half_live, check_routing, unknown_channel_keys, Findings,
};
use super::validate_agent::check_agent;
use super::Config;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Everything one load found: the config when nothing is wrong, and every problem and warning.
pub(crate) struct LoadReport {
    pub(crate) config: Option<Config>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<String>,
}

impl Config {
    /// Loads and validates `dir` with `${VAR}` taken from the process environment.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(dir, &process_env)
    }

    /// Loads and validates `dir` with `${VAR}` taken from `env` (tests pass their own).
    pub fn load_with_env(dir: &Path, env: Env) -> Result<Config, ConfigError> {
        let report = load_report(dir, env)?;
        match report.config {
            Some(config) if report.problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid(report.problems)),
        }
    }
}

/// Loads `dir`. `Err` only when there is nothing to load (no directory, no channels.yaml).
pub(crate) fn load_report(dir: &Path, env: Env) -> Result<LoadReport, ConfigError> {
    if !dir.is_dir() {
        return Err(ConfigError::DirNotFound(dir.to_path_buf()));
    }
    let channels_path = dir.join("channels.yaml");
    if !channels_path.is_file() {
        return Err(ConfigError::ChannelsMissing(channels_path));
    }
    let mut found = Findings::default();
    let mut notes: Vec<String> = Vec::new();

    let channels = read_source(&channels_path, env, &mut found.problems).and_then(|mut src| {
        stringify_numbers(&mut src.value);
        unknown_channel_keys(&src, &mut found);
        match deserialize::<ChannelsFile>(&mut src) {
            Ok(file) => {
                let mut whatsapp = file.channels.whatsapp;
                check_channel(&whatsapp, &src, &mut found);
                check_half_live(&whatsapp, &src, &mut found);
                trim_slash(&mut whatsapp.graph_api_base);
                Some((whatsapp, src))
            }
            Err(problem) => {
                found.problems.push(problem);
                None
            }
        }
    });

    let agents_dir = dir.join("agents");
    let mut agents = BTreeMap::new();
    let mut agent_files: BTreeMap<String, PathBuf> = BTreeMap::new();
    // Names of agents whose file is broken: already reported, so not "missing" as well.
    // Without a readable `metadata.name`, the file name (`NAME.agent.yaml`) is the best guess.
    let mut broken_names = BTreeSet::new();
    for path in agent_paths(&agents_dir, &mut found, &mut notes) {
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".agent.yaml"))
            .unwrap_or_default()
            .to_string();
        let Some(mut src) = read_source(&path, env, &mut found.problems) else {
            broken_names.insert(stem);
            continue;
        };
        let (parsed, skipped) = deserialize_noting_skipped::<AgentFile>(&mut src);
        found.problems.extend(
            skipped
                .iter()
                .filter_map(|field| skipped_key_problem(&src, field)),
        );
        let mut agent = match parsed {
            Ok(agent) => agent,
            Err(problem) => {
                found.problems.push(problem);
                let name = src.value.get("metadata").and_then(|m| m.get("name"));
                match name {
                    Some(Value::String(name)) => broken_names.insert(name.clone()),
                    _ => broken_names.insert(stem),
                };
                continue;
            }
        };
        check_agent(&mut agent, &src, &mut found);
        trim_agent_slashes(&mut agent);
        let name = agent.metadata.name.clone();
        if let Some(first) = agent_files.get(&name) {
            let field = FieldPath::keys(&["metadata", "name"]);
            found.problems.push(src.problem(
                &field,
                format!(
                    "agent `{name}` is already defined in {}; each agent needs its own name",
                    first.display()
                ),
            ));
            continue;
        }
        note_empty_vars(&src, &mut notes);
        agent_files.insert(name.clone(), path);
        agents.insert(name, agent);
    }

    let mut known: BTreeSet<String> = agents.keys().cloned().collect();
    known.extend(broken_names);
    if let Some((whatsapp, src)) = &channels {
        check_routing(whatsapp, src, &known, &agents_dir, &mut found);
        note_empty_vars(src, &mut notes);
    }

    let mut warnings: Vec<String> = found.warnings.iter().map(Problem::to_string).collect();
    warnings.extend(notes);
    let config = channels.map(|(whatsapp, _)| Config {
        dir: dir.to_path_buf(),
        whatsapp,
        agents,
        agent_files,
        warnings: warnings.clone(),
    });
    Ok(LoadReport {
        config,
        problems: found.problems,
        warnings,
    })
}

/// `agents/*.agent.yaml`, sorted. Other YAML files there get a warning: a misnamed agent file
/// would otherwise vanish without a word.
fn agent_paths(agents_dir: &Path, found: &mut Findings, notes: &mut Vec<String>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(agents_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            found.problems.push(Problem {
                file: agents_dir.to_path_buf(),
                field: None,
                line: None,
                column: None,
                message: format!("cannot list the agents directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".agent.yaml") {
                return path.is_file();
            }
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                notes.push(format!(
                    "{}: ignored: agent files must be named NAME.agent.yaml",
                    path.display()
                ));
            }
            false
        })
        .collect()
}

/// Base URLs are joined with paths (`{base}/{version}/...`, `{endpoint}/chat/completions`), so
/// a trailing slash would double up; `https://host/v1/` means `https://host/v1`.
fn trim_slash(url: &mut String) {
    let trimmed = url.trim_end_matches('/').len();
    url.truncate(trimmed);
}

fn trim_agent_slashes(agent: &mut AgentFile) {
    trim_slash(&mut agent.spec.model.primary.endpoint);
    if let Some(fallback) = &mut agent.spec.model.fallback {
        trim_slash(&mut fallback.endpoint);
    }
    if let Some(transcription) = &mut agent.spec.transcription {
        trim_slash(&mut transcription.endpoint);
    }
}

/// `numbers` maps phone number ids, which YAML reads as numbers unless quoted; they are
/// strings to wagate, so read them as written. Same for `phone_number_id`.
fn stringify_numbers(root: &mut Value) {
    let Some(whatsapp) = root.get_mut("channels").and_then(|c| c.get_mut("whatsapp")) else {
        return;
    };
    if let Some(id @ Value::Number(_)) = whatsapp.get_mut("phone_number_id") {
        *id = Value::String(super::expand::key_text(id));
    }
    if let Some(Value::Mapping(numbers)) = whatsapp.get_mut("numbers") {
        let entries = std::mem::take(numbers);
        for (key, value) in entries {
            let key = Value::String(super::expand::key_text(&key));
            numbers.insert(key, value);
        }
    }
}

/// One warning per file naming the variables that were unset or empty, and where they are used.
fn note_empty_vars(src: &SourceFile, notes: &mut Vec<String>) {
    let mut uses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (field, vars) in &src.expansion.empty_vars {
        for var in vars {
            uses.entry(var).or_default().push(field.to_string());
        }
    }
    if uses.is_empty() {
        return;
    }
    let list: Vec<String> = uses
        .iter()
        .map(|(var, fields)| format!("{var} ({})", fields.join(", ")))
        .collect();
    notes.push(format!(
        "{}: unset or empty environment variables: {}",
        src.path.display(),
        list.join("; ")
    ));
}
