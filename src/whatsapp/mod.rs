//! Meta's WhatsApp Cloud API protocol: what comes in and what goes out.
//!
//! - [`signature`]: the `X-Hub-Signature-256` check on the raw webhook body (and signing, for
//!   `wagate simulate` and tests).
//! - [`payload`]: a tolerant typed reading of the whole webhook body: every entry, change,
//!   message, status and error, keeping what it does not model.

pub mod payload;
pub mod signature;
