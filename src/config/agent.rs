//! `config/agents/NAME.agent.yaml`: the Astromesh agent schema (`apiVersion: astromesh/v1`,
//! `kind: Agent`). Parsed in full so `wagate check` can validate every key the runtime executes.
//! Keys of the schema that wagate does not execute (`identity`, `permissions`, ...) are accepted
//! and ignored, so files written for the reference platform load unchanged.

use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// One agent file.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentFile {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub metadata: AgentMetadata,
    pub spec: AgentSpec,
}

/// `metadata`: who the agent is.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentMetadata {
    /// The agent's name: what `default_agent` and `numbers` refer to.
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `spec`: what the agent runs.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentSpec {
    #[serde(default)]
    pub identity: Option<Identity>,
    pub model: ModelSpec,
    #[serde(default)]
    pub prompts: Prompts,
    #[serde(default)]
    pub orchestration: Orchestration,
    #[serde(default)]
    pub memory: MemorySpec,
    #[serde(default)]
    pub guardrails: Guardrails,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Optional speech-to-text for audio messages (voice notes).
    #[serde(default)]
    pub transcription: Option<TranscriptionSpec>,
    /// WhatsApp-specific behaviour of this agent.
    #[serde(default)]
    pub whatsapp: AgentWhatsApp,
}

/// `spec.whatsapp`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct AgentWhatsApp {
    /// A customer's reaction to one of the agent's messages starts a turn in which the model
    /// reads `[Reaction 👍 to your message: "…"]`. Off: reactions are recorded, not answered.
    #[serde(default)]
    pub reactions_to_agent: bool,
}

/// `spec.identity`: descriptive only; wagate does not act on it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Identity {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `spec.model`: candidates in the order they are tried.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub primary: ModelEndpoint,
    #[serde(default)]
    pub fallback: Option<ModelEndpoint>,
    #[serde(default)]
    pub routing: Routing,
}

impl ModelSpec {
    /// Primary first, then fallback: the registration order every strategy starts from.
    pub fn candidates(&self) -> Vec<&ModelEndpoint> {
        std::iter::once(&self.primary)
            .chain(self.fallback.as_ref())
            .collect()
    }
}

/// `provider` of a model: how to talk to it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Ollama,
    /// Any OpenAI-compatible Chat Completions server (OpenAI, vLLM, llama.cpp, LM Studio, Ollama /v1).
    Openai,
}

impl Provider {
    /// The name as written in the agent file, and in logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ollama => "ollama",
            Provider::Openai => "openai",
        }
    }
}

/// What a model can take beyond text in and text out.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Vision,
    Tools,
}

/// `spec.model.primary` / `fallback`: one model to call.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEndpoint {
    pub provider: Provider,
    pub model: String,
    /// Base URL: `http://host:11434` for Ollama, `https://host/v1` for OpenAI-compatible servers.
    pub endpoint: String,
    #[serde(default)]
    pub api_key: Secret,
    /// `temperature`, `max_tokens`, and anything else, passed on to the provider.
    #[serde(default)]
    pub parameters: serde_json::Map<String, Json>,
    /// When absent, inferred from the model name (llava, vision, -vl, gemma3, gpt-4o, ...).
    #[serde(default)]
    pub capabilities: Option<Vec<Capability>>,
    /// Bound on one model call; the whole turn is bounded by `orchestration.timeout_seconds`.
    #[serde(default = "default_model_timeout_seconds")]
    pub timeout_seconds: u64,
    /// The model's context window in tokens. Absent: asked of the server (Ollama `/api/show`,
    /// llama.cpp `/props`, vLLM's model list) when a request could need it, else 8192.
    #[serde(default)]
    pub context_window: Option<u32>,
}

/// `spec.model.routing`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Routing {
    #[serde(default)]
    pub strategy: RoutingStrategy,
}

/// The reference schema's strategy names. wagate executes `capability_match` (vision requests
/// go only to vision models) and treats the others as registration order (primary, then
/// fallback), which is what they reduce to with two candidates and no cost/latency data.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    #[default]
    CapabilityMatch,
    RegistrationOrder,
    CostOptimized,
    LatencyOptimized,
    QualityFirst,
    RoundRobin,
}

/// `spec.prompts`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Prompts {
    /// A Jinja template; variables `contact_name`, `phone`, `agent_name`, `now` (RFC 3339).
    #[serde(default)]
    pub system: String,
}

/// `spec.orchestration`: the ReAct loop's bounds.
#[derive(Debug, Clone, Deserialize)]
pub struct Orchestration {
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Model calls per turn, tool rounds included.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// Bound on the whole turn.
    #[serde(default = "default_turn_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for Orchestration {
    fn default() -> Self {
        Orchestration {
            pattern: default_pattern(),
            max_iterations: default_max_iterations(),
            timeout_seconds: default_turn_timeout_seconds(),
        }
    }
}

/// `spec.memory`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct MemorySpec {
    /// Absent: the agent has no memory; each turn sees only its own messages.
    #[serde(default)]
    pub conversational: Option<ConversationalMemory>,
}

/// `spec.memory.conversational`: the sliding window of past messages.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationalMemory {
    #[serde(default = "default_memory_backend")]
    pub backend: String,
    #[serde(default = "default_memory_strategy")]
    pub strategy: String,
    /// Past messages a turn sees (user and assistant each count one), newest kept.
    #[serde(default = "default_max_turns")]
    pub max_turns: usize,
    /// Seconds; older messages are not used and are purged.
    #[serde(default = "default_ttl")]
    pub ttl: u64,
}

/// `spec.guardrails`: rules on the user's text (input) and the reply (output).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Guardrails {
    #[serde(default)]
    pub input: Vec<GuardrailRule>,
    #[serde(default)]
    pub output: Vec<GuardrailRule>,
}

/// One guardrail, applied in the order listed. An unknown `type` is a config error.
// Read through a flat struct rather than `#[serde(tag = "type")]`: serde buffers internally
// tagged enums, which hides the field path of any error inside them from the config report.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "super::agent_raw::RawGuardrail")]
pub enum GuardrailRule {
    PiiDetection { action: PiiAction },
    MaxLength { max_chars: usize },
}

/// What `pii_detection` does with what it finds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    #[default]
    Redact,
}

/// A tool the model may call in the ReAct loop.
// Flat struct then conversion, for the same reason as `GuardrailRule`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "super::agent_raw::RawTool")]
pub enum ToolSpec {
    /// Built into wagate, chosen by name (`current_time`).
    Builtin {
        name: String,
        description: Option<String>,
    },
    /// An HTTP call whose `{{ arg }}` placeholders are filled from the call's arguments.
    Http {
        name: String,
        /// Empty when absent.
        description: String,
        /// JSON Schema of the arguments, shown to the model. Absent: an object with no properties.
        parameters: Json,
        http: HttpToolSpec,
    },
    /// A Model Context Protocol server whose tools are offered as `<name>__<tool>`.
    Mcp(McpToolSpec),
}

impl ToolSpec {
    /// The tool's name; for an MCP server, the prefix of its tools' names.
    pub fn name(&self) -> &str {
        match self {
            ToolSpec::Builtin { name, .. } | ToolSpec::Http { name, .. } => name,
            ToolSpec::Mcp(mcp) => &mcp.name,
        }
    }
}

/// `type: mcp`: a stdio server wagate starts (`command`, `args`, `env`) or a streamable-HTTP
/// server (`url`, `headers`). `Debug` shows env and header names, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct McpToolSpec {
    pub name: String,
    pub transport: McpTransport,
    /// Only these of the server's tools (by the server's names); `None`: all of them.
    pub include: Option<Vec<String>>,
    /// Bound on connecting (and listing tools) and on each tool call.
    pub timeout_seconds: u64,
    /// A tool result is cut to this many bytes before the model sees it.
    pub max_response_bytes: usize,
}

/// How wagate reaches an MCP server.
#[derive(Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP at `url`, every request carrying `headers`.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// `Debug` shows header names but not their values, and no query string or body: those are
/// where API keys live.
#[derive(Clone, Deserialize)]
pub struct HttpToolSpec {
    #[serde(default = "default_http_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body; string leaves may hold `{{ arg }}` placeholders.
    #[serde(default)]
    pub body: Option<Json>,
    #[serde(default = "default_tool_timeout_seconds")]
    pub timeout_seconds: u64,
    /// The response body is cut to this many bytes before the model sees it.
    #[serde(default = "default_tool_max_response_bytes")]
    pub max_response_bytes: usize,
}

/// Which speech-to-text API `spec.transcription` speaks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptionProvider {
    Openai,
    WhisperCpp,
}

/// `spec.transcription`: speech-to-text for audio messages.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptionSpec {
    pub provider: TranscriptionProvider,
    pub endpoint: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub api_key: Secret,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default = "default_max_audio_seconds")]
    pub max_seconds: u64,
    #[serde(default = "default_transcription_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_model_timeout_seconds() -> u64 {
    60
}
fn default_pattern() -> String {
    "react".into()
}
fn default_max_iterations() -> u32 {
    5
}
fn default_turn_timeout_seconds() -> u64 {
    30
}
fn default_memory_backend() -> String {
    "sqlite".into()
}
fn default_memory_strategy() -> String {
    "sliding_window".into()
}
fn default_max_turns() -> usize {
    20
}
fn default_ttl() -> u64 {
    86_400
}
pub(super) fn empty_object_schema() -> Json {
    serde_json::json!({"type": "object", "properties": {}})
}
fn default_http_method() -> String {
    "GET".into()
}
fn default_tool_timeout_seconds() -> u64 {
    10
}
pub(super) fn default_mcp_timeout_seconds() -> u64 {
    30
}
pub(super) fn default_tool_max_response_bytes() -> usize {
    16 * 1024
}
fn default_max_audio_seconds() -> u64 {
    300
}
fn default_transcription_timeout_seconds() -> u64 {
    60
}
