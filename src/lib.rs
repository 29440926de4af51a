//! wagate: an LLM agent on a WhatsApp business number.
//!
//! A tour of the modules, in the order a message travels through them:
//!
//! - [`config`]: `channels.yaml` and `agents/*.agent.yaml`, `${VAR}` expansion, validation.
//! - [`net`]: the accept loop below the router: connection cap, header and body timeouts,
//!   graceful shutdown.
//! - [`http`]: the axum router: Meta's webhook (handshake, signed POST), health, metrics.
//! - [`whatsapp`]: Meta's protocol: signatures, the typed webhook payload (the one reader of
//!   Meta's message types: `MessageKind`), the Graph API client and the messages it sends
//!   (text, interactive, media by link, location, reaction, template), its channel rate limit
//!   (in memory, or kept in PostgreSQL and shared by every replica), Markdown-to-WhatsApp
//!   formatting, reply splitting, the 24-hour customer service window.
//! - [`inbox`]: the durable inbox, the one owner of the database (record in bounded slices,
//!   dedupe, statuses, reply parts, conversation memory, resume): SQLite in `--data` with one
//!   writer thread, or PostgreSQL (`--database`) for several replicas, with conversations
//!   claimed by fenced leases (`inbox/store/postgres`, which also keeps the shared rate limit
//!   and purges inbox rows older than 8 days, one replica per hour); and
//!   the dispatcher that runs one ordered lane per conversation, with tasks only for running
//!   turns (a feeder hands free slots to conversations waiting in the store, page by page).
//! - [`responder`]: answers a turn on WhatsApp: read receipt, media, agent, format, split,
//!   send each part (what the agent's tools sent, then its text) exactly once (marked sending
//!   before the Graph call, confirmed by Meta's status notifications after a crash), within
//!   the 24-hour window; the outbox sends operator replies through the same path.
//! - [`handoff`]: a person takes a conversation over (operator, keyword, the agent's tool) and
//!   hands it back; operator replies, opening hours, the console's live events; a customer's
//!   opt-out (STOP keywords, Meta's `user_preferences`) around the store's commit; with several
//!   replicas, its view of who has each conversation follows the others'. Its HTTP side
//!   (operator API, console login) is `http::operator`.
//! - [`transcription`]: speech to text for voice notes (OpenAI-compatible or whisper.cpp).
//! - [`agent`]: one turn of an agent: input (what each `MessageKind` becomes for the model),
//!   guardrails, memory, prompt, ReAct loop (tool calls native or written as text), tools
//!   (builtin, HTTP, MCP servers).
//! - [`llm`]: model providers (Ollama, OpenAI-compatible), the router between them, and context
//!   budgets (token estimates, each server's window, requests fitted to it).
//! - [`memory`]: sliding-window conversation memory, kept by the inbox store; images as media
//!   ids, downloaded again for later turns (`agent::runtime::remembered`).
//! - [`guardrails`]: PII redaction and length limits on input and output.
//! - [`secret`]: a string type that never prints its value.
//! - [`live_config`]: the config in force, swapped atomically on reload; [`reload`]: file watch
//!   and SIGHUP.
//! - [`metrics`]: the typed Prometheus metrics behind `/metrics` (`prometheus-client`, one
//!   struct of families registered once; the series alerts read pre-created with 0).
//! - [`retry`]: every retry's shape (`Backoff`, Graph's `RetryPolicy`) and every wait before
//!   trying again, named and explained once; [`retry_after`]: the one clamped `Retry-After`
//!   parser of every HTTP client.
//! - [`console`]: the operator console at `/console/` (embedded page; failed turns and dead
//!   letters, each with its retry).
//! - [`server`]: wiring it all together; [`cli`] and [`simulate`]: the command line.
//! - `text`: how errors, URLs and MIME types are shown: one home for each such helper.
//! - [`chat`]: `wagate chat`, a terminal conversation with an agent through the same runtime.
//! - [`ops`]: operator commands beside a running server (or its replicas, with `--database`):
//!   `inbox`, `retry`, `history`, `check --online`, `healthcheck`.

pub mod agent;
pub(crate) mod chat;
pub mod cli;
pub mod config;
pub(crate) mod console;
pub mod guardrails;
pub mod handoff;
pub mod http;
pub mod inbox;
pub mod live_config;
pub mod llm;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod reload;
pub mod responder;
pub(crate) mod retry;
pub(crate) mod retry_after;
pub mod secret;
pub mod server;
pub mod simulate;
pub mod telemetry;
pub(crate) mod text;
pub mod transcription;
pub mod whatsapp;
