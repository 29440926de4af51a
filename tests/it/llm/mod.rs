//! The model side on its own, against fake model servers over real HTTP.
//!
//! - `providers.rs`: each provider's wire format.
//! - `router.rs`: fallback, image routing, the circuit breaker.
//! - `react.rs`: the ReAct loop with a fake HTTP tool.

mod providers;
mod react;
mod router;
