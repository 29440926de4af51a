//! Meta's WhatsApp Cloud API protocol: what comes in and what goes out.
//!
//! - [`signature`]: the `X-Hub-Signature-256` check on the raw webhook body (and signing, for
//!   `wagate simulate` and tests).
//! - [`payload`]: a tolerant typed reading of the whole webhook body: every entry, change,
//!   message, status and error, keeping what it does not model.
//! - [`graph`]: the Graph API client: send text, read receipts and typing, media download,
//!   typed errors, retries with backoff, the channel rate limit and per-user pacing.
//! - [`format`]: the model's Markdown turned into WhatsApp's own markup.
//! - [`split`]: replies longer than WhatsApp's 4096 characters cut at natural boundaries.
//! - [`window`]: the 24-hour customer service window, outside which only templates go out.

pub mod format;
pub mod graph;
pub mod payload;
pub mod signature;
pub mod split;
pub mod window;
