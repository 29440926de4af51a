//! One agent compiled for running turns: everything that can be prepared once per config load.

use super::AgentError;
use crate::agent::prompt::PromptTemplate;
use crate::agent::tools::ToolSet;
use crate::config::{AgentFile, GuardrailRule};
use crate::llm::Router;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// An agent ready to run: its router, tools, prompt, guardrails and bounds.
#[derive(Debug)]
pub(super) struct CompiledAgent {
    /// `metadata.name`, the `agent_name` of the system prompt.
    pub(super) name: String,
    pub(super) router: Router,
    pub(super) tools: ToolSet,
    pub(super) prompt: PromptTemplate,
    pub(super) input_rules: Vec<GuardrailRule>,
    pub(super) output_rules: Vec<GuardrailRule>,
    /// `None`: the agent has no conversational memory.
    pub(super) memory: Option<MemoryWindow>,
    pub(super) max_iterations: u32,
    /// Bound on the whole turn.
    pub(super) timeout: Duration,
}

/// The agent's sliding window over past messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct MemoryWindow {
    pub(super) max_turns: usize,
    /// Seconds; 0 keeps messages forever.
    pub(super) ttl: u64,
}

impl CompiledAgent {
    /// Compiles `file` under `name`; models and HTTP tools share `http`.
    pub(super) fn build(
        name: &str,
        file: &AgentFile,
        http: &reqwest::Client,
        metrics: &Arc<Metrics>,
    ) -> Result<CompiledAgent, AgentError> {
        let spec = &file.spec;
        let prompt =
            PromptTemplate::compile(&spec.prompts.system).map_err(|error| AgentError::Prompt {
                agent: name.to_owned(),
                error,
            })?;
        let tools = ToolSet::new(&spec.tools, http.clone()).map_err(|error| AgentError::Tools {
            agent: name.to_owned(),
            error,
        })?;
        let memory = spec
            .memory
            .conversational
            .as_ref()
            .map(|window| MemoryWindow {
                max_turns: window.max_turns,
                ttl: window.ttl,
            });
        Ok(CompiledAgent {
            name: name.to_owned(),
            router: Router::new(&spec.model, http.clone()).observed_by(Arc::clone(metrics)),
            tools,
            prompt,
            input_rules: spec.guardrails.input.clone(),
            output_rules: spec.guardrails.output.clone(),
            memory,
            max_iterations: spec.orchestration.max_iterations,
            timeout: Duration::from_secs(spec.orchestration.timeout_seconds),
        })
    }
}
