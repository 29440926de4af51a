//! The durable inbox (SQLite) and the dispatcher that turns it into ordered per-conversation turns.

pub mod turn;

pub use turn::*;
