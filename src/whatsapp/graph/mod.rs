//! Everything wagate asks of Meta's Graph API: send text, mark read with typing, fetch media.
//!
//! - [`client`]: [`GraphClient`], its options, send a message and mark read; dry run.
//! - [`outgoing`]: the messages besides text (interactive, media by link, location, reaction,
//!   template) in Meta's request shapes.
//! - [`media`]: media metadata and size-limited in-memory downloads.
//! - [`error`]: [`GraphError`] with Meta's error fields typed, and which errors are retryable.
//! - [`retry`]: exponential backoff with full jitter, honouring `Retry-After`.
//! - `pacing`: the channel-wide message cap (a rolling window) and per-user spacing.
//! - [`shared_window`]: the same cap kept in the database, shared by several replicas.

pub mod client;
pub mod error;
pub mod media;
pub mod outgoing;
mod pacing;
pub mod retry;
pub mod shared_window;

pub use client::{GraphClient, GraphOptions, SentMessage};
pub use error::{GraphApiError, GraphError};
pub use media::{MediaError, MediaInfo, MediaKind};
pub use outgoing::{Choice, OutgoingMessage};
pub use retry::RetryPolicy;
pub use shared_window::{SendSlots, SharedRateLimit};
