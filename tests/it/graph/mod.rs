//! The Graph API client on its own, against the fake Graph over real HTTP.
//!
//! - `send.rs`: text and read receipts: request shapes, error parsing, what is retried.
//! - `media.rs`: inbound media: metadata, download with the token, the size limits.
//! - `pacing.rs`: the channel-wide cap and per-user spacing (paused time).
//! - `logs.rs`: what the client writes to the log, and what it never does.

mod logs;
mod media;
mod pacing;
mod send;
