//! The common webhook, recorded in one statement: messages of one conversation and nothing
//! else (no status, dead letter, keyword handoff, opt-out change or reaction). Migration
//! 0004's `wagate_record_lane` does what `intake.rs`'s transaction does for such a body (the
//! conversation's state, the rows with their JSON, the claim of the reserved conversation),
//! and when the conversation is free with nothing waiting it inserts the messages already
//! taken by their turn, so each message row is written once less. One round trip and one
//! flushed commit instead of five round trips; the caller still answers `200` only after it.

use super::intake::Columns;
use super::turns::{claimed, lease_ms, Claimed};
use super::PgStore;
use crate::inbox::store::conversations::HELD_FOR_PERSON;
use crate::inbox::store::opt_out::WHILE_OPTED_OUT;
use crate::inbox::store::turns::MAX_MESSAGES_PER_TURN;
use crate::inbox::store::{Batch, MessageState, RecordOutcome, StoreError};
use crate::inbox::LaneKey;
use std::collections::{HashMap, HashSet};

/// The conversation whose messages are all of `batch`, when the body is the common kind this
/// path records and the dispatcher reserved no other conversation (`lanes`).
pub(super) fn single_lane(batch: &Batch, lanes: &[LaneKey]) -> Option<LaneKey> {
    let plain = batch.statuses.is_empty()
        && batch.dead_letters.is_empty()
        && batch.handoffs.is_empty()
        && batch.opt_changes.is_empty()
        && batch.replaces_dead_letter.is_none()
        && batch.messages.iter().all(|m| m.kind != "reaction");
    let lane = &batch.messages.first()?.lane;
    let one_lane = batch.messages.iter().all(|m| m.lane == *lane)
        && lanes.iter().all(|reserved| reserved == lane);
    (plain && one_lane).then(|| lane.clone())
}

impl PgStore {
    /// Record `batch` (all of `lane`, see [`single_lane`]) and, with `claim`, take the lane's
    /// turn. Returns the outcome and the claimed turn (its lease not yet registered).
    pub(super) async fn record_lane(
        &self,
        batch: &Batch,
        lane: &LaneKey,
        claim: bool,
    ) -> Result<(RecordOutcome, Option<Claimed>), StoreError> {
        let c = Columns::of(batch);
        let now = crate::inbox::store::now_millis();
        let lease_ms = lease_ms();
        let limit = MAX_MESSAGES_PER_TURN as i32;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT * FROM wagate_record_lane($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                                  $12, $13, $14, $15, $16, $17, $18)",
            )
            .await
            .map_err(|e| self.error(e))?;
        let rows = client
            .query(
                &stmt,
                &[
                    &lane.phone_number_id,
                    &lane.user,
                    &c.ids,
                    &c.displays,
                    &c.names,
                    &c.kinds,
                    &c.stamps,
                    &c.states,
                    &c.notes,
                    &c.raws,
                    &now,
                    &HELD_FOR_PERSON,
                    &WHILE_OPTED_OUT,
                    &claim,
                    &self.inner.replica,
                    &lease_ms,
                    &limit,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        let (inserted, turn_rows): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|row| row.get::<_, Option<String>>(0).is_some());
        let inserted: HashMap<String, String> = inserted
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let claimed = claimed(lane, &turn_rows, 2);
        let in_turn: HashSet<String> = claimed
            .iter()
            .flat_map(|c| c.turn.messages.iter().map(|(m, _)| m.message_id.clone()))
            .collect();
        Ok((outcome(batch, lane, &inserted, &in_turn), claimed))
    }
}

/// The webhook's outcome from the messages inserted (message id → state stored) and the ids
/// of the messages the claimed turn holds.
fn outcome(
    batch: &Batch,
    lane: &LaneKey,
    inserted: &HashMap<String, String>,
    in_turn: &HashSet<String>,
) -> RecordOutcome {
    let mut outcome = RecordOutcome::default();
    let mut counted = HashSet::new();
    for m in &batch.messages {
        // The first of two copies of a message in one body is the one inserted.
        let state = match inserted.get(&m.message_id) {
            Some(state) if counted.insert(m.message_id.as_str()) => state.as_str(),
            _ => {
                outcome.duplicates += 1;
                continue;
            }
        };
        if state == MessageState::Pending.as_str() || state == MessageState::Taken.as_str() {
            outcome.new_pending_messages += 1;
            // A message no turn took yet (another replica holds the conversation, an
            // interrupted turn comes first, the cap) must still be told to the dispatcher.
            if !in_turn.contains(&m.message_id) && outcome.new_pending.is_empty() {
                outcome.new_pending.push(lane.clone());
            }
        } else {
            outcome.new_skipped += 1;
        }
    }
    outcome
}
