//! A running turn's claim on its conversation: a take-over stops it, and a conversation a
//! person has gets no turn at all.

use super::{lock, Handoff};
use crate::inbox::LaneKey;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running turn's claim on its conversation; `stopped` resolves when a person takes it over.
pub struct TurnGuard {
    pub(super) handoff: Arc<Handoff>,
    pub(super) lane: LaneKey,
    pub(super) id: u64,
    pub(super) token: CancellationToken,
}

impl TurnGuard {
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let mut running = lock(&self.handoff.running);
        if running
            .get(&self.lane)
            .is_some_and(|(id, _)| *id == self.id)
        {
            running.remove(&self.lane);
        }
    }
}

impl Handoff {
    /// Before a turn: `None` when a person has the conversation (run no turn); else a guard
    /// that stops the turn when a person takes over while it runs.
    pub fn enter_turn(self: &Arc<Self>, lane: &LaneKey) -> Option<TurnGuard> {
        let token = CancellationToken::new();
        let id = self
            .next_guard
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.running).insert(lane.clone(), (id, token.clone()));
        let guard = TurnGuard {
            handoff: Arc::clone(self),
            lane: lane.clone(),
            id,
            token,
        };
        // Registered first, checked second: a take-over between the two still cancels us.
        if self.is_human(lane) {
            return None; // the guard unregisters itself
        }
        Some(guard)
    }
}
