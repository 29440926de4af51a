//! Talking to models: provider-neutral chat types, the Ollama and OpenAI-compatible providers,
//! and the router that picks a candidate (capability match, fallback, circuit breaker).

pub mod types;

pub use types::*;
