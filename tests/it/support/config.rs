//! Config directories written from typed values. A [`Channel`] and its [`Agent`]s become
//! `channels.yaml` and `agents/<name>.agent.yaml` (serialized, never patched as text), then
//! load through the real loader, so a test says what it changes (`.debounce_ms(0)`,
//! `.max_iterations(8)`) and the loader still checks every key.
//!
//! Keys without a method of their own are set with `set(key, json!(...))`: the value is still
//! a typed JSON tree, and a misspelt key fails the load with the loader's "did you mean".

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use wagate::config::Config;

use super::fake_graph::FAKE_TOKEN;
use super::{PHONE_NUMBER_ID, SECRET, VERIFY_TOKEN};

/// The agent every end-to-end test talks to.
pub const ASSISTANT: &str = "whatsapp-assistant";

/// `channels.whatsapp`, key by key.
#[derive(Debug, Clone)]
pub struct Channel {
    keys: Map<String, Value>,
}

impl Channel {
    /// Only `default_agent`: no secret, no token (tests of what is missing start here).
    pub fn bare(default_agent: &str) -> Channel {
        Channel { keys: Map::new() }.set("default_agent", json!(default_agent))
    }

    /// Signed with [`SECRET`], [`VERIFY_TOKEN`] set, no access token or number: a dry run.
    pub fn dry_run() -> Channel {
        Channel::bare(ASSISTANT)
            .set("verify_token", json!(VERIFY_TOKEN))
            .set("app_secret", json!(SECRET))
    }

    /// A dry run made live against the Graph API at `graph_base` with `token` and the test
    /// number, and a rate limit no test reaches (1,000 messages a second).
    pub fn live(graph_base: &str, token: &str) -> Channel {
        Channel::dry_run()
            .set("access_token", json!(token))
            .set("phone_number_id", json!(PHONE_NUMBER_ID))
            .set("graph_api_base", json!(graph_base))
            .rate_limit(1, 1000)
    }

    /// Sets `key` (deep-merging objects into what is there).
    pub fn set(mut self, key: &str, value: Value) -> Channel {
        merge_key(&mut self.keys, key, value);
        self
    }

    /// Removes `key`.
    pub fn unset(mut self, key: &str) -> Channel {
        self.keys.remove(key);
        self
    }

    pub fn debounce_ms(self, ms: u64) -> Channel {
        self.set("debounce_ms", json!(ms))
    }

    pub fn max_concurrent_turns(self, turns: u64) -> Channel {
        self.set("max_concurrent_turns", json!(turns))
    }

    pub fn rate_limit(self, window_seconds: u64, max_messages: u64) -> Channel {
        self.set(
            "rate_limit",
            json!({"window_seconds": window_seconds, "max_messages": max_messages}),
        )
    }

    /// The operator console and API, opened with `token`.
    pub fn console(self, token: &str) -> Channel {
        self.set("console", json!({"token": token}))
    }

    pub fn error_reply(self, text: &str) -> Channel {
        self.set("error_reply", json!(text))
    }

    /// `handoff:` (keywords, hours, release timer, notify URL).
    pub fn handoff(self, handoff: Value) -> Channel {
        self.set("handoff", handoff)
    }

    /// The template that reopens a closed 24-hour window.
    pub fn reopen_template(self, name: &str, language: &str) -> Channel {
        self.set(
            "window",
            json!({"reopen_template": {"name": name, "language": language}}),
        )
    }

    /// `channels.yaml` holding this channel.
    pub fn yaml(&self) -> String {
        to_yaml(&json!({"channels": {"whatsapp": self.keys}}))
    }
}

/// A model entry: `spec.model.primary` (or `fallback`).
#[derive(Debug, Clone)]
pub struct Model {
    keys: Map<String, Value>,
}

impl Model {
    /// An Ollama server at `endpoint` serving `model`.
    pub fn ollama(endpoint: &str, model: &str) -> Model {
        Model::of("ollama", endpoint, model)
    }

    /// An OpenAI-compatible server at `endpoint` (its `/v1` base) serving `model`.
    pub fn openai(endpoint: &str, model: &str) -> Model {
        Model::of("openai", endpoint, model)
    }

    pub fn of(provider: &str, endpoint: &str, model: &str) -> Model {
        let mut keys = Map::new();
        keys.insert("provider".into(), json!(provider));
        keys.insert("model".into(), json!(model));
        keys.insert("endpoint".into(), json!(endpoint));
        Model { keys }
    }

    pub fn timeout_seconds(self, seconds: u64) -> Model {
        self.set("timeout_seconds", json!(seconds))
    }

    /// What the model can take: `["vision", "tools"]`.
    pub fn capabilities(self, capabilities: &[&str]) -> Model {
        self.set("capabilities", json!(capabilities))
    }

    pub fn context_window(self, tokens: u64) -> Model {
        self.set("context_window", json!(tokens))
    }

    pub fn set(mut self, key: &str, value: Value) -> Model {
        merge_key(&mut self.keys, key, value);
        self
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.keys.clone())
    }
}

/// One `agents/<name>.agent.yaml`: its name and what sits under `spec:`.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    spec: Map<String, Value>,
}

impl Agent {
    /// `name` on `model` and nothing else: no prompt, no memory, no tools.
    pub fn new(name: &str, model: Model) -> Agent {
        let mut spec = Map::new();
        spec.insert("model".into(), json!({"primary": model.to_json()}));
        Agent {
            name: name.to_owned(),
            spec,
        }
    }

    /// The end-to-end tests' agent: [`ASSISTANT`] on Ollama's `llama3.1:8b` at `endpoint`
    /// (5 s a call), the prompt "You are {{ agent_name }}.", 3 tool rounds within 10 s, and
    /// memory of 10 turns for an hour.
    pub fn assistant(endpoint: &str) -> Agent {
        Agent::named_assistant(ASSISTANT, endpoint)
    }

    /// [`Agent::assistant`] under another name.
    pub fn named_assistant(name: &str, endpoint: &str) -> Agent {
        Agent::new(
            name,
            Model::ollama(endpoint, "llama3.1:8b").timeout_seconds(5),
        )
        .system_prompt("You are {{ agent_name }}.")
        .orchestration(3, Some(10))
        .memory(10, Some(3600))
    }

    /// Changes only the primary model's name (`llava:7b`).
    pub fn model_name(self, name: &str) -> Agent {
        self.edit_model(|m| m.set("model", json!(name)))
    }

    /// Changes the primary model entry.
    pub fn edit_model(mut self, edit: impl FnOnce(Model) -> Model) -> Agent {
        let keys = self.spec["model"]["primary"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let model = edit(Model { keys });
        self.spec["model"]["primary"] = model.to_json();
        self
    }

    /// `spec.model.fallback`.
    pub fn fallback(mut self, model: Model) -> Agent {
        self.spec["model"]["fallback"] = model.to_json();
        self
    }

    pub fn system_prompt(self, prompt: &str) -> Agent {
        self.set("prompts", json!({"system": prompt}))
    }

    /// `orchestration`: at most `max_iterations` model calls, within `timeout_seconds`.
    pub fn orchestration(self, max_iterations: u64, timeout_seconds: Option<u64>) -> Agent {
        let mut orchestration = json!({"max_iterations": max_iterations});
        if let Some(seconds) = timeout_seconds {
            orchestration["timeout_seconds"] = json!(seconds);
        }
        self.set("orchestration", orchestration)
    }

    pub fn max_iterations(self, max_iterations: u64) -> Agent {
        self.set("orchestration", json!({"max_iterations": max_iterations}))
    }

    /// Conversational memory of `max_turns` turns, for `ttl` seconds when given.
    pub fn memory(self, max_turns: u64, ttl: Option<u64>) -> Agent {
        let mut conversational = json!({"max_turns": max_turns});
        if let Some(ttl) = ttl {
            conversational["ttl"] = json!(ttl);
        }
        self.set("memory", json!({"conversational": conversational}))
    }

    /// Conversational memory with the defaults (`conversational: {}`).
    pub fn default_memory(self) -> Agent {
        self.set("memory", json!({"conversational": {}}))
    }

    /// Appends one entry to `tools`.
    pub fn tool(mut self, tool: Value) -> Agent {
        let tools = self
            .spec
            .entry("tools")
            .or_insert_with(|| Value::Array(Vec::new()));
        tools.as_array_mut().expect("tools is a list").push(tool);
        self
    }

    /// Appends one `{type: builtin, name}` entry per name to `tools`.
    pub fn builtins(self, names: &[&str]) -> Agent {
        names.iter().fold(self, |agent, name| {
            agent.tool(json!({"type": "builtin", "name": name}))
        })
    }

    /// Sets `key` under `spec` (deep-merging objects into what is there).
    pub fn set(mut self, key: &str, value: Value) -> Agent {
        merge_key(&mut self.spec, key, value);
        self
    }

    /// The whole agent file.
    pub fn yaml(&self) -> String {
        to_yaml(&json!({
            "apiVersion": "astromesh/v1",
            "kind": "Agent",
            "metadata": {"name": self.name},
            "spec": self.spec,
        }))
    }

    /// The file name the loader expects for this agent.
    pub fn file_name(&self) -> String {
        format!("{}.agent.yaml", self.name)
    }
}

/// A config directory on disk, written from a [`Channel`] and [`Agent`]s, loaded through the
/// real loader.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    /// `channel` and `agents`, each in its own file.
    pub fn write(channel: &Channel, agents: &[Agent]) -> ConfigDir {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), channel, agents);
        ConfigDir { dir }
    }

    /// A dry run (signed, verify token) whose [`Agent::assistant`] points nowhere
    /// (`127.0.0.1:9`), with `edit` applied to the channel.
    pub fn dry_run(edit: impl FnOnce(Channel) -> Channel) -> ConfigDir {
        ConfigDir::write(
            &edit(Channel::dry_run()),
            &[Agent::assistant("http://127.0.0.1:9")],
        )
    }

    /// A live channel against the fake Graph at `graph_base` (its token, the test number)
    /// with `edit` applied, and [`Agent::assistant`] on `llm`.
    pub fn live(graph_base: &str, llm: &str, edit: impl FnOnce(Channel) -> Channel) -> ConfigDir {
        ConfigDir::write(
            &edit(Channel::live(graph_base, FAKE_TOKEN)),
            &[Agent::assistant(llm)],
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self) -> Config {
        Config::load(self.dir.path()).expect("test config is valid")
    }

    /// Rewrites (or adds) one agent's file, as an operator's edit would.
    pub fn write_agent(&self, agent: &Agent) {
        std::fs::write(self.agent_path(&agent.name), agent.yaml()).unwrap();
    }

    /// Rewrites `channels.yaml`.
    pub fn write_channel(&self, channel: &Channel) {
        std::fs::write(self.path().join("channels.yaml"), channel.yaml()).unwrap();
    }

    pub fn agent_path(&self, name: &str) -> PathBuf {
        self.path()
            .join("agents")
            .join(format!("{name}.agent.yaml"))
    }
}

/// Writes `channels.yaml` and `agents/*.agent.yaml` into `dir` (created if missing).
pub fn write_dir(dir: &Path, channel: &Channel, agents: &[Agent]) {
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    std::fs::write(dir.join("channels.yaml"), channel.yaml()).unwrap();
    for agent in agents {
        std::fs::write(dir.join("agents").join(agent.file_name()), agent.yaml()).unwrap();
    }
}

fn merge_key(map: &mut Map<String, Value>, key: &str, value: Value) {
    match (map.get_mut(key), value) {
        (Some(Value::Object(old)), Value::Object(new)) => {
            for (k, v) in new {
                merge_key(old, &k, v);
            }
        }
        (_, value) => {
            map.insert(key.to_owned(), value);
        }
    }
}

fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value).expect("a JSON tree is valid YAML")
}
