//! The provider-neutral shape of a chat with a model. Providers translate these to their wire
//! format (Ollama `/api/chat`, OpenAI-compatible `/chat/completions`) and back.

use bytes::Bytes;
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, fed back to the model.
    Tool,
}

/// An image sent to a vision model. Bytes stay in memory only.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageData {
    pub mime_type: String,
    pub data: Bytes,
}

impl std::fmt::Debug for ImageData {
    // Never dump image bytes into a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImageData({}, {} bytes)",
            self.mime_type,
            self.data.len()
        )
    }
}

/// Arguments of a tool call as the model produced them. OpenAI-compatible servers send a JSON
/// string that may not parse; the parse failure goes back to the model as the tool's result.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolArguments {
    Valid(Json),
    Invalid { raw: String, error: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Provider-assigned id (OpenAI); Ollama has none, so one is generated.
    pub id: String,
    pub name: String,
    pub arguments: ToolArguments,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Only on user messages, only for vision models.
    pub images: Vec<ImageData>,
    /// Only on assistant messages.
    pub tool_calls: Vec<ToolCall>,
    /// Only on tool messages: which call this answers (OpenAI `tool_call_id`) ...
    pub tool_call_id: Option<String>,
    /// ... and the tool's name (Ollama `tool_name`).
    pub tool_name: Option<String>,
}

impl ChatMessage {
    fn plain(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content)
    }
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(call.id.clone()),
            tool_name: Some(call.name.clone()),
            ..Self::plain(Role::Tool, content)
        }
    }
}

/// A tool the model may call, in the OpenAI function shape both providers accept.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Json,
}

#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Empty: the model must answer in text (the ReAct loop's last call).
    pub tools: Vec<ToolDefinition>,
    /// Which of `messages` are remembered history (oldest first): what may be left out when
    /// the request does not fit the model's context. Empty: nothing may be left out.
    pub history: std::ops::Range<usize>,
    /// The context window the request was fitted to, when known; Ollama is told it as
    /// `num_ctx` so it never truncates the prompt silently.
    pub context_window: Option<u32>,
}

impl ChatRequest {
    /// Routing needs to know: a request with an image goes only to vision models.
    pub fn has_images(&self) -> bool {
        self.messages.iter().any(|m| !m.images.is_empty())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct ChatResponse {
    /// Role is always `Assistant`; `tool_calls` non-empty means the model wants tools run.
    pub message: ChatMessage,
    pub usage: Usage,
    /// Which candidate answered, `provider/model`, for logs and metrics.
    pub model: String,
}
