//! The durable inbox (SQLite, or PostgreSQL for several replicas) and the dispatcher that turns
//! it into ordered per-conversation turns.

pub mod dispatcher;
mod intake;
pub mod store;
pub mod turn;

pub use dispatcher::{Dispatcher, DispatcherSettings, TurnHandler, WakeUpSettings};
pub use store::{
    Batch, FirstPart, InboundState, NewInbound, PartRef, RecordOutcome, ReplyPart, SendRefusal,
    StatusUpdate, Store, StoreError, TurnOutcome, CONFIRM_WINDOW, MAX_MESSAGES_PER_TURN,
};
pub use turn::*;
