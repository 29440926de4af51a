//! The one way in: [`Dispatcher::accept`] records a webhook's batch and starts the turns it
//! calls for. The webhook hands over the batch and hears back what was recorded, nothing more.
//!
//! For each conversation with a new message to answer that is idle (and when no debounce has
//! to gather a burst first and a turn slot is free), a slot is reserved before the commit, the
//! commit itself claims the conversation's turn, and the lane starts with it: one trip to the
//! writer instead of two. Every other conversation with new messages is notified after the
//! commit. A per-conversation gate (a conversation a person has taken over starts no turn)
//! belongs in [`lanes_to_answer`], the one place that decides which conversations of a batch
//! get a turn.

use super::dispatcher::Reservation;
use super::{Batch, Dispatcher, InboundState, LaneKey, RecordOutcome, StoreError};
use std::sync::Arc;

impl Dispatcher {
    /// Record `batch` durably and start the turns it calls for. Returns after the commit (of
    /// every slice of a huge batch); an error means nothing can be promised (answer 503 so Meta
    /// delivers again: what was recorded is deduplicated then).
    pub async fn accept(self: &Arc<Self>, batch: Batch) -> Result<RecordOutcome, StoreError> {
        let reservations: Vec<Reservation> = lanes_to_answer(&batch)
            .into_iter()
            .filter_map(|lane| self.reserve(lane))
            .collect();
        let claim = reservations.iter().map(|r| r.lane().clone()).collect();
        // On an error, dropping the reservations starts their lanes, which look at the store
        // themselves: nothing the commit may have recorded is stranded.
        let (outcome, mut turns) = self.store().record_and_claim(batch, claim).await?;
        for reservation in reservations {
            let turn = turns
                .iter()
                .position(|t| &t.lane == reservation.lane())
                .map(|i| turns.swap_remove(i));
            reservation.start(turn);
        }
        for lane in &outcome.new_pending {
            self.notify(lane.clone());
        }
        Ok(outcome)
    }
}

/// Each conversation with a message to answer in `batch`, once, in first-seen order.
fn lanes_to_answer(batch: &Batch) -> Vec<&LaneKey> {
    let mut lanes: Vec<&LaneKey> = Vec::new();
    for m in &batch.messages {
        if m.state == InboundState::Pending && !lanes.contains(&&m.lane) {
            lanes.push(&m.lane);
        }
    }
    lanes
}
