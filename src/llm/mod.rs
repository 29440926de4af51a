//! Talking to models: provider-neutral chat types, the Ollama and OpenAI-compatible providers,
//! and the router that picks a candidate (capability match, fallback, circuit breaker).

pub mod breaker;
pub mod budget;
pub mod capabilities;
pub mod discovery;
pub mod error;
mod ollama;
mod openai;
mod provider;
pub mod router;
pub mod types;

pub use breaker::BreakerPolicy;
pub use capabilities::{capabilities_of, Capabilities};
pub use error::ProviderError;
pub use router::{ChatOutcome, Router, RouterError};
pub use types::*;
