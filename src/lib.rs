//! wagate: an LLM agent on a WhatsApp business number.
//!
//! A tour of the modules, in the order a message travels through them:
//!
//! - [`config`]: `channels.yaml` and `agents/*.agent.yaml`, `${VAR}` expansion, validation.
//! - [`net`]: the accept loop below the router: connection cap, header and body timeouts,
//!   graceful shutdown.
//! - [`http`]: the axum router: Meta's webhook (handshake, signed POST), health, metrics.
//! - [`whatsapp`]: Meta's protocol: signatures, the typed webhook payload, the Graph API client,
//!   Markdown-to-WhatsApp formatting and reply splitting.
//! - [`inbox`]: the durable SQLite inbox (record, dedupe, statuses, resume) and the dispatcher
//!   that runs one ordered lane per conversation.
//! - [`responder`]: answers a turn on WhatsApp: read receipt, media, agent, format, split,
//!   send each part exactly once.
//! - [`handoff`]: a person takes a conversation over (operator, keyword, the agent's tool) and
//!   hands it back; operator replies, opening hours, the console's live events. Its HTTP side
//!   (operator API, console login) is `http::operator`.
//! - [`transcription`]: speech to text for voice notes (OpenAI-compatible or whisper.cpp).
//! - [`agent`]: one turn of an agent: input, guardrails, memory, prompt, ReAct loop, tools.
//! - [`llm`]: model providers (Ollama, OpenAI-compatible) and the router between them.
//! - [`memory`]: sliding-window conversation memory in the same SQLite database.
//! - [`guardrails`]: PII redaction and length limits on input and output.
//! - [`secret`]: a string type that never prints its value.
//! - [`runtime`]: the config in force, swapped atomically on reload; [`reload`]: file watch
//!   and SIGHUP.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`console`]: the operator console at `/console/` (embedded page, failed turns and retry).
//! - [`server`]: wiring it all together; [`cli`] and [`simulate`]: the command line.
//! - [`chat`]: `wagate chat`, a terminal conversation with an agent through the same runtime.
//! - [`ops`]: operator commands beside a running server: `inbox`, `retry`, `history`,
//!   `check --online`, `healthcheck`.

pub mod agent;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod guardrails;
pub mod handoff;
pub mod http;
pub mod inbox;
pub mod llm;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod reload;
pub mod responder;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod simulate;
pub mod telemetry;
pub mod transcription;
pub mod whatsapp;
