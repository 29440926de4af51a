//! The fast path's reservation: with no debounce, a webhook for an idle conversation sets the
//! lane and a turn slot aside before its commit, the commit claims the lane's turn
//! ([`Store::record_and_claim`](crate::inbox::Store::record_and_claim)), and the lane starts
//! with it: one trip to the writer instead of two.

use super::slots::Slot;
use super::{Dispatcher, Start};
use crate::inbox::{LaneKey, Turn};
use std::sync::Arc;

/// An idle conversation set aside for one webhook, with a turn slot: the webhook's commit
/// claims the lane's turn and [`Reservation::start`] runs it.
/// Dropped unstarted (the request was cancelled, the commit failed), the lane starts anyway
/// and claims from the store, so nothing the commit may have recorded is stranded.
pub struct Reservation {
    dispatcher: Arc<Dispatcher>,
    lane: LaneKey,
    slot: Option<Slot>,
}

impl Reservation {
    /// The conversation reserved.
    pub fn lane(&self) -> &LaneKey {
        &self.lane
    }

    /// Start the lane with the turn the commit claimed for it (`None`: it claims from the store).
    pub fn start(mut self, turn: Option<Turn>) {
        if turn.is_some() {
            self.dispatcher
                .count_claim(crate::metrics::ClaimedBy::Webhook);
        }
        self.launch(turn);
    }

    fn launch(&mut self, turn: Option<Turn>) {
        if let Some(slot) = self.slot.take() {
            let start = Start {
                maybe_interrupted: turn.is_none(),
                turn,
                slot: Some(slot),
            };
            self.dispatcher.spawn_lane(self.lane.clone(), start);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.launch(None);
    }
}

impl Dispatcher {
    /// Before recording a webhook: when `lane` is idle, no debounce applies and a turn slot is
    /// free, set the lane (and the slot) aside so the webhook's commit can claim its turn.
    /// `None`: record normally and [`notify`](Self::notify) after the commit.
    pub fn reserve(self: &Arc<Self>, lane: &LaneKey) -> Option<Reservation> {
        if !self.debounce.is_zero() || self.stopping.is_cancelled() {
            return None;
        }
        let slot = self.slots.reserve(self, lane)?;
        self.metrics.lanes_active.inc();
        Some(Reservation {
            dispatcher: Arc::clone(self),
            lane: lane.clone(),
            slot: Some(slot),
        })
    }
}
