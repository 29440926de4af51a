//! Several replicas on PostgreSQL: this service's mirrors (who has each conversation, who opted
//! out) follow what the other replicas commit. The replica that commits a take-over, a release,
//! an opt-out or a resume says so with a `NOTIFY` ([`Handoff::announce`]); the others read the
//! store's state again at once, and every [`SYNC_EVERY`] anyway (a `NOTIFY` is a hint: one is
//! lost while the listening connection is down, and none is heard with `--notify off`). A
//! conversation that another replica handed to a person (or whose customer opted out there)
//! has its turn running here stopped, as a take-over on this replica would, and the console
//! connected here hears of the change. Whatever the mirror still says, no part goes out after
//! such a commit: the store refuses to mark it `sending` (`responder::deliver`), and a refused
//! part makes this replica read the state again too ([`Handoff::sync_soon`]). The release timer
//! (`sweeper`) sees every replica's conversations, so a conversation is released even when the
//! replica that took it over is gone (each release is one conditional write: two replicas
//! releasing it at once release it once). With SQLite there is one process and nothing to
//! follow.

use super::{conversation_id, lock, Handoff};
use crate::inbox::store::HumanConversation;
use crate::inbox::{LaneKey, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a replica reads the conversations' state again: two reads of small tables.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

impl Handoff {
    /// Bring the mirrors in line with the store; returns how many conversations changed
    /// hands or opted out since the last look.
    pub async fn sync_from_store(&self) -> Result<usize, StoreError> {
        let humans: HashMap<LaneKey, HumanConversation> = self
            .store
            .human_conversations()
            .await?
            .into_iter()
            .map(|h| (h.lane.clone(), h))
            .collect();
        let opted_out: HashMap<LaneKey, i64> = self
            .store
            .opted_out_conversations()
            .await?
            .into_iter()
            .map(|o| (o.lane, o.timestamp))
            .collect();
        let (to_person, to_agent) = {
            let mut mirror = lock(&self.humans);
            let new: Vec<LaneKey> = humans
                .keys()
                .filter(|lane| !mirror.contains_key(*lane))
                .cloned()
                .collect();
            let gone: Vec<LaneKey> = mirror
                .keys()
                .filter(|lane| !humans.contains_key(*lane))
                .cloned()
                .collect();
            *mirror = humans;
            (new, gone)
        };
        let newly_opted_out: Vec<LaneKey> = {
            let mut mirror = lock(&self.opted_out);
            let new = opted_out
                .keys()
                .filter(|lane| !mirror.contains_key(*lane))
                .cloned()
                .collect();
            *mirror = opted_out;
            new
        };
        {
            let running = lock(&self.running);
            for lane in to_person.iter().chain(&newly_opted_out) {
                if let Some((_, token)) = running.get(lane) {
                    token.cancel();
                }
            }
        }
        for lane in &to_person {
            self.events.send(
                "conversation",
                json!({"conversation": conversation_id(lane), "state": "human"}),
            );
        }
        for lane in &to_agent {
            self.events.send(
                "conversation",
                json!({"conversation": conversation_id(lane), "state": "agent"}),
            );
        }
        let changed = to_person.len() + to_agent.len() + newly_opted_out.len();
        if changed > 0 {
            self.refresh_metrics();
        }
        Ok(changed)
    }
}

impl Handoff {
    /// Read the conversations' state again now rather than at the next poll (a part was
    /// refused for a change this replica had not heard of).
    pub fn sync_soon(&self) {
        self.sync_wanted.notify_one();
    }
}

/// The follower task of a replica; ends when `stop` is cancelled.
pub(super) async fn run(handoff: Arc<Handoff>, stop: CancellationToken) {
    follow(handoff, stop, SYNC_EVERY).await
}

/// Sync on every hint (another replica's `NOTIFY`, a refused part) and every `every`.
async fn follow(handoff: Arc<Handoff>, stop: CancellationToken, every: Duration) {
    let store = handoff.store.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = store.conversation_changed_elsewhere() => {}
            _ = handoff.sync_wanted.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = handoff.sync_from_store().await {
            tracing::warn!(error = %e, "cannot read the conversations' state from the database; trying again");
        }
    }
}

#[cfg(test)]
pub(super) async fn follow_for_test(
    handoff: Arc<Handoff>,
    stop: CancellationToken,
    every: Duration,
) {
    follow(handoff, stop, every).await
}
