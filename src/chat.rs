//! `wagate chat`: a terminal conversation with an agent through the same runtime as WhatsApp
//! turns (router, memory under `chat_<agent>`, guardrails, tools). For people editing agent YAML.
//!
//! Reads one line at a time from stdin, so it works when stdin is a pipe; `/quit` or end of
//! input ends it. A failed turn prints its error and the conversation goes on.

use crate::agent::input::ResolvedPart;
use crate::agent::runtime::{AgentError, AgentRuntime, TurnAnswer, TurnRequest};
use crate::config::{Config, ConfigError};
use crate::inbox::store::DATABASE_FILE;
use crate::memory::{key_for_chat, Memory, MemoryError};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

/// What `wagate chat` was asked to do.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Directory holding channels.yaml and agents/.
    pub config_dir: PathBuf,
    /// The agent to talk to; `None`: the channel's `default_agent`.
    pub agent: Option<String>,
    /// Directory of `wagate.db` (created if missing).
    pub data_dir: PathBuf,
}

/// Why a chat session could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("invalid configuration in {dir}:\n{error}")]
    Config { dir: PathBuf, error: ConfigError },
    #[error("no agent named `{name}` (agents: {known})")]
    UnknownAgent { name: String, known: String },
    #[error("cannot create the data directory {dir}: {error}")]
    DataDir { dir: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("terminal input/output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs a chat session on stdin and stdout until `/quit` or end of input.
pub async fn run(options: ChatOptions) -> Result<(), ChatError> {
    let config = Config::load(&options.config_dir).map_err(|error| ChatError::Config {
        dir: options.config_dir.clone(),
        error,
    })?;
    let agent = options
        .agent
        .unwrap_or_else(|| config.whatsapp.default_agent.clone());
    if !config.agents.contains_key(&agent) {
        let known = config.agents.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(ChatError::UnknownAgent { name: agent, known });
    }
    std::fs::create_dir_all(&options.data_dir).map_err(|error| ChatError::DataDir {
        dir: options.data_dir.clone(),
        error,
    })?;
    let memory = Memory::open(&options.data_dir.join(DATABASE_FILE))?;
    let http = reqwest::Client::builder().build()?;
    let runtime = AgentRuntime::build(&config, memory, http)?;
    let stdin = BufReader::new(tokio::io::stdin());
    converse(&runtime, &agent, stdin, std::io::stdout()).await
}

/// The read-run-print loop over `input`, printing to `output`.
async fn converse(
    runtime: &AgentRuntime,
    agent: &str,
    mut input: impl AsyncBufRead + Unpin,
    mut output: impl Write + IsTerminal,
) -> Result<(), ChatError> {
    let interactive = output.is_terminal() && std::io::stdin().is_terminal();
    let models = runtime.models(agent).unwrap_or_default().join(", then ");
    writeln!(
        output,
        "wagate chat with agent `{agent}` ({models}); /quit or end of input to leave"
    )?;
    let memory_key = key_for_chat(agent);
    let contact_name = std::env::var("USER").ok().filter(|n| !n.is_empty());
    // Seeded with the time so turn ids never collide with an earlier session's in memory.
    let mut turn_id = chrono::Utc::now().timestamp_millis();
    let mut line = String::new();
    loop {
        if interactive {
            write!(output, "> ")?;
            output.flush()?;
        }
        line.clear();
        if input.read_line(&mut line).await? == 0 {
            break;
        }
        let text = line.trim();
        if text == "/quit" {
            break;
        }
        if text.is_empty() {
            continue;
        }
        turn_id += 1;
        let request = TurnRequest {
            memory_key: memory_key.clone(),
            turn_id,
            contact_name: contact_name.clone(),
            phone: String::new(),
            parts: vec![ResolvedPart::Text(text.to_owned())],
            media: None,
        };
        let result = runtime.run(agent, request).await;
        // What a tool sent reads as WhatsApp would show it, in text: `[buttons: A | B]`.
        for sent in &result.sends {
            writeln!(output, "{}", sent.describe())?;
        }
        match result.outcome {
            TurnAnswer::Answered(reply) if reply.trim().is_empty() => {}
            TurnAnswer::Answered(reply) => writeln!(output, "{reply}")?,
            TurnAnswer::Failed { error } => writeln!(output, "[error] {error}")?,
            TurnAnswer::Nothing => {}
        }
        output.flush()?;
    }
    Ok(())
}
