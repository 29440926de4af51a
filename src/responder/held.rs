//! Reply parts that earlier turns held for the 24-hour window go out first when the customer
//! writes again: at the start of the conversation's next turn, oldest first.

use super::deliver::{self, Delivered, Delivery, Sender};
use super::{retry_later, Responder};
use crate::inbox::{Turn, TurnOutcome};

impl Responder {
    /// Sends the parts earlier turns of this conversation held for the 24-hour window, oldest
    /// first. `Some(outcome)` when this turn must stop (Meta unreachable: retried later, so
    /// the held parts keep their place before this turn's reply).
    pub(super) async fn send_held(
        &self,
        sender: &Sender<'_>,
        turn: &Turn,
        last_customer_at: Option<i64>,
    ) -> Option<TurnOutcome> {
        let held = match self.store.held_turns(turn.lane.clone()).await {
            Ok(held) => held,
            Err(e) => return Some(retry_later(format!("cannot read held parts: {e}"))),
        };
        for turn_id in held.into_iter().filter(|id| *id != turn.id) {
            let parts = match self.store.load_reply(turn_id).await {
                Ok(parts) => parts.unwrap_or_default(),
                Err(e) => return Some(retry_later(format!("cannot read held parts: {e}"))),
            };
            let delivery = Delivery {
                key: turn_id,
                lane: &turn.lane,
                quote: None,
                last_customer_at,
            };
            match sender.send_parts(&delivery, parts).await {
                Delivered::Done => {
                    tracing::info!(turn_id, "parts held for the 24-hour window sent");
                }
                Delivered::Held { .. } => break, // still closed: this turn's reply waits too
                Delivered::Failed(reason) => {
                    tracing::warn!(turn_id, reason = %reason, "a part held for the 24-hour window failed");
                }
                Delivered::RetryLater(reason) => {
                    return Some(deliver::Delivered::RetryLater(reason).into_turn_outcome())
                }
                // A person has the conversation or the customer opted out: this turn stops too.
                refused @ Delivered::Refused(_) => return Some(refused.into_turn_outcome()),
            }
        }
        None
    }
}
