//! The agent turn runtime: every agent of a loaded config compiled once (router, tools, prompt,
//! guardrails, memory settings), and [`AgentRuntime::run`], which runs one turn of one agent.
//!
//! One turn, in this order (every step on every turn; see `turn.rs`):
//! 1. input guardrails on every text part and image caption, before the model and memory;
//! 2. the memory window of the conversation, when the agent has conversational memory, with
//!    the newest remembered image downloaded again for a vision model (`remembered.rs`);
//! 3. the system prompt, rendered once;
//! 4. the ReAct loop over `[system, history.., user]`, the whole turn bounded by
//!    `orchestration.timeout_seconds`;
//! 5. output guardrails on the reply, before it is returned and before memory;
//! 6. memory append (idempotent per turn id): the user's redacted text and the redacted reply,
//!    or only the user's text when the turn failed;
//! 7. a failure (every model failed, the timeout) comes back as [`TurnAnswer::Failed`]; the
//!    caller sends the channel's `error_reply`.
//!
//! Each turn runs in a `turn` span (agent, a short hash of the memory key) that records the
//! models tried, tool calls, tokens, duration and outcome when it ends.

mod compiled;
pub mod remembered;
mod turn;

use crate::agent::input::ResolvedPart;
use crate::agent::prompt::PromptError;
use crate::agent::tools::ToolError;
use crate::config::Config;
use crate::llm::Usage;
use crate::memory::Memory;
use crate::metrics::Metrics;
use compiled::CompiledAgent;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::field::Empty;
use tracing::Instrument;

/// Every agent of one loaded config, ready to run turns. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct AgentRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    agents: BTreeMap<String, CompiledAgent>,
    memory: Memory,
}

/// An agent of the config cannot be made ready to run. Names the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The system prompt template does not compile.
    #[error("agent `{agent}`: {error}")]
    Prompt { agent: String, error: PromptError },
    /// A tool cannot be built (unknown builtin, bad HTTP method, duplicate name).
    #[error("agent `{agent}`: {error}")]
    Tools { agent: String, error: ToolError },
}

/// One turn to run: the pending messages of one conversation.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    /// `wa_<phone>` or `chat_<name>`: whose memory the turn reads and extends.
    pub memory_key: String,
    /// Memory append is idempotent per `(memory_key, turn_id)`, so a resumed turn stores once.
    pub turn_id: i64,
    /// The WhatsApp profile name, for the system prompt.
    pub contact_name: Option<String>,
    /// The user's number, for the system prompt.
    pub phone: String,
    /// The turn's messages in arrival order, already resolved (media downloaded or described).
    pub parts: Vec<ResolvedPart>,
    /// Where remembered images are downloaded again (WhatsApp: the Graph API); `None` keeps
    /// them as text (`wagate chat`).
    pub media: Option<Arc<dyn remembered::MediaSource>>,
}

/// What the turn produced for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnAnswer {
    /// The reply to send, after output guardrails. Empty when the turn's only answer is what
    /// its tools sent ([`TurnResult::sends`]).
    Answered(String),
    /// No reply could be produced; the caller sends the channel's `error_reply`.
    Failed { error: String },
    /// The turn had no parts to answer; nothing was asked and nothing stored.
    Nothing,
}

/// One turn's answer and what it cost.
#[derive(Debug, Clone)]
pub struct TurnResult {
    /// The reply, the failure, or nothing to answer.
    pub outcome: TurnAnswer,
    /// `provider/model` of each model that answered or failed, first use first.
    pub models_tried: Vec<String>,
    /// Model calls made (tool rounds and the final answer).
    pub model_calls: u32,
    /// Names of the tools called, in order.
    pub tool_calls: Vec<String>,
    /// Tokens summed over the turn's model calls.
    pub usage: Usage,
    /// Wall time of the whole turn.
    pub duration: Duration,
    /// The agent called `handoff_to_human`: the caller hands the conversation to a person.
    pub handoff: Option<crate::agent::react::HandoffRequest>,
    /// Messages the sending tools produced (buttons, a list, media, a location, a reaction),
    /// in call order, after output guardrails: sent before the reply text.
    pub sends: Vec<crate::whatsapp::graph::OutgoingMessage>,
}

impl TurnResult {
    fn with_outcome(outcome: TurnAnswer) -> TurnResult {
        TurnResult {
            outcome,
            models_tried: Vec::new(),
            model_calls: 0,
            tool_calls: Vec::new(),
            usage: Usage::default(),
            duration: Duration::ZERO,
            handoff: None,
            sends: Vec::new(),
        }
    }

    fn outcome_name(&self) -> &'static str {
        match self.outcome {
            TurnAnswer::Answered(_) => "answered",
            TurnAnswer::Failed { .. } => "failed",
            TurnAnswer::Nothing => "nothing",
        }
    }
}

/// How logs name a conversation without its phone number: the first 8 hex digits of the
/// SHA-256 of the memory key.
pub fn conversation_id(memory_key: &str) -> String {
    let digest = Sha256::digest(memory_key.as_bytes());
    hex::encode(&digest[..4])
}

impl AgentRuntime {
    /// Compiles every agent of `config`. Models and HTTP tools share `http` (its pool).
    pub fn build(
        config: &Config,
        memory: Memory,
        http: reqwest::Client,
    ) -> Result<AgentRuntime, AgentError> {
        Self::build_observed(config, memory, http, Arc::new(Metrics::new()))
    }

    /// As [`build`](Self::build), counting every model call in `metrics`.
    pub fn build_observed(
        config: &Config,
        memory: Memory,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Result<AgentRuntime, AgentError> {
        let mut agents = BTreeMap::new();
        for (name, file) in &config.agents {
            agents.insert(
                name.clone(),
                CompiledAgent::build(name, file, &http, &metrics)?,
            );
        }
        Ok(AgentRuntime {
            inner: Arc::new(Inner { agents, memory }),
        })
    }

    /// `provider/model` of each of the agent's models in the order they are tried, or `None`
    /// when there is no such agent.
    pub fn models(&self, agent_name: &str) -> Option<Vec<String>> {
        self.inner
            .agents
            .get(agent_name)
            .map(|agent| agent.router.models())
    }

    /// Runs one turn of `agent_name`. Never panics; failures come back in the result.
    pub async fn run(&self, agent_name: &str, request: TurnRequest) -> TurnResult {
        let started = Instant::now();
        let span = tracing::info_span!(
            "turn",
            agent = %agent_name,
            conversation = %conversation_id(&request.memory_key),
            outcome = Empty,
            models_tried = Empty,
            model_calls = Empty,
            tool_calls = Empty,
            prompt_tokens = Empty,
            completion_tokens = Empty,
            duration_ms = Empty,
        );
        let mut result = if self.inner.agents.contains_key(agent_name) {
            self.run_isolated(agent_name, request, span.clone()).await
        } else {
            let error = format!("no agent named `{agent_name}` is loaded");
            span.in_scope(|| tracing::error!(%error, "turn_failed"));
            TurnResult::with_outcome(TurnAnswer::Failed { error })
        };
        result.duration = started.elapsed();
        record(&span, &result);
        result
    }

    /// Runs the turn in its own task so a panic anywhere below (a provider, a tool) becomes a
    /// failed turn instead of taking the caller down. Dropping `run` still cancels the turn.
    async fn run_isolated(
        &self,
        agent_name: &str,
        request: TurnRequest,
        span: tracing::Span,
    ) -> TurnResult {
        let inner = Arc::clone(&self.inner);
        let name = agent_name.to_owned();
        let task = tokio::spawn(
            async move {
                match inner.agents.get(&name) {
                    Some(agent) => turn::run(agent, &inner.memory, request).await,
                    None => TurnResult::with_outcome(TurnAnswer::Nothing),
                }
            }
            .instrument(span.clone()),
        );
        let _cancel_with_caller = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(result) => result,
            Err(join_error) => {
                let error = if join_error.is_panic() {
                    "the turn panicked (a bug in wagate; see the log)".to_owned()
                } else {
                    "the turn was cancelled".to_owned()
                };
                span.in_scope(|| tracing::error!(%error, "turn_failed"));
                TurnResult::with_outcome(TurnAnswer::Failed { error })
            }
        }
    }
}

/// Aborts the turn's task when the caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Emits one summary event with the turn's totals, then writes them onto its span (for
/// span-aware subscribers). In that order, so a text log does not print them twice.
fn record(span: &tracing::Span, result: &TurnResult) {
    let models = result.models_tried.join(",");
    let tools = result.tool_calls.join(",");
    let duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        tracing::info!(
            outcome = result.outcome_name(),
            models_tried = %models,
            model_calls = result.model_calls,
            tool_calls = %tools,
            prompt_tokens = result.usage.prompt_tokens,
            completion_tokens = result.usage.completion_tokens,
            duration_ms,
            "turn_finished"
        );
    });
    span.record("outcome", result.outcome_name());
    span.record("models_tried", models.as_str());
    span.record("model_calls", result.model_calls);
    span.record("tool_calls", tools.as_str());
    span.record("prompt_tokens", result.usage.prompt_tokens);
    span.record("completion_tokens", result.usage.completion_tokens);
    span.record("duration_ms", duration_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_named_in_logs_by_a_short_stable_hash_without_the_phone() {
        let id = conversation_id("wa_5511999999999");
        assert_eq!(id.len(), 8);
        assert!(!id.contains("5511999999999"));
        assert_eq!(id, conversation_id("wa_5511999999999"));
        assert_ne!(id, conversation_id("wa_5511999999998"));
    }
}
