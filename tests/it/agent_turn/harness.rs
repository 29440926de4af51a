//! Writing a config directory for one agent, building the runtime on it, running turns.

use crate::support::config::write_dir;
use crate::support::fake_llm::{messages_of, ollama_says, Recorded, Reply};
use crate::support::{Agent, Channel, Model};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use wagate::agent::input::ResolvedPart;
use wagate::agent::runtime::{AgentRuntime, TurnAnswer, TurnRequest, TurnResult};
use wagate::config::Config;
use wagate::memory::{Memory, MemoryEntry};

/// The name of the agent every test writes.
pub const AGENT: &str = "helper";

/// A model entry for an Ollama server at `url` (30 s a call).
pub fn ollama_model(url: &str, model: &str) -> Model {
    Model::ollama(url, model).timeout_seconds(30)
}

/// The agent every test writes ([`AGENT`]) on `model`, with nothing else set.
pub fn agent(model: Model) -> Agent {
    Agent::new(AGENT, model)
}

/// Writes `config/channels.yaml` (default agent [`AGENT`]) and `agent`'s file under `dir`.
pub fn write_config(dir: &Path, agent: &Agent) -> PathBuf {
    let config = dir.join("config");
    write_dir(&config, &Channel::bare(AGENT), std::slice::from_ref(agent));
    config
}

/// A loaded config, its database and the runtime built on them.
pub struct Harness {
    pub dir: TempDir,
    pub db: PathBuf,
    pub config: Config,
    pub memory: Memory,
    pub runtime: AgentRuntime,
}

impl Harness {
    /// Writes `agent`, loads it with `Config::load` and builds the runtime.
    pub fn start(agent: Agent) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_dir = write_config(dir.path(), &agent);
        let config = Config::load(&config_dir).expect("config loads");
        let db = dir.path().join("wagate.db");
        let memory = Memory::open(&db).expect("open memory");
        let runtime = AgentRuntime::build(&config, memory.clone(), reqwest::Client::new())
            .expect("runtime builds");
        Harness {
            dir,
            db,
            config,
            memory,
            runtime,
        }
    }

    /// A new runtime on the same config and database file, as after a restart.
    pub fn restart(self) -> Harness {
        let Harness {
            dir, db, config, ..
        } = self;
        let memory = Memory::open(&db).expect("reopen memory");
        let runtime = AgentRuntime::build(&config, memory.clone(), reqwest::Client::new())
            .expect("runtime rebuilds");
        Harness {
            dir,
            db,
            config,
            memory,
            runtime,
        }
    }

    /// Runs one turn of the agent with one text message.
    pub async fn say(&self, key: &str, turn_id: i64, text: &str) -> TurnResult {
        self.turn(key, turn_id, vec![ResolvedPart::Text(text.to_owned())])
            .await
    }

    /// Runs one turn of the agent with these parts.
    pub async fn turn(&self, key: &str, turn_id: i64, parts: Vec<ResolvedPart>) -> TurnResult {
        let request = TurnRequest {
            memory_key: key.to_owned(),
            turn_id,
            contact_name: Some("Ana".into()),
            phone: "5511999999999".into(),
            parts,
            media: None,
        };
        self.runtime.run(AGENT, request).await
    }

    /// Everything memory holds for `key`, expired or not.
    pub async fn remembered(&self, key: &str) -> Vec<MemoryEntry> {
        self.memory.history(key, 1000).await.expect("read memory")
    }
}

/// The reply text of an answered turn; panics with the result otherwise.
pub fn answer(result: &TurnResult) -> String {
    match &result.outcome {
        TurnAnswer::Answered(text) => text.clone(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// The error of a failed turn; panics with the result otherwise.
pub fn failure(result: &TurnResult) -> String {
    match &result.outcome {
        TurnAnswer::Failed { error } => error.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// `(role, content)` of each message of a recorded chat request.
pub fn roles_and_contents(request: &Recorded) -> Vec<(String, String)> {
    messages_of(request)
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// An Ollama answer that echoes the last user message: `echo: <text>`.
pub fn echo(request: &Recorded, _index: usize) -> Reply {
    let last_user = roles_and_contents(request)
        .into_iter()
        .rev()
        .find(|(role, _)| role == "user")
        .map(|(_, content)| content)
        .unwrap_or_default();
    ollama_says(&format!("echo: {last_user}"))
}
