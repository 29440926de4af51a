//! The sending half of the wake-ups (`wake.rs` listens): a replica that leaves work it cannot
//! start now (every turn slot busy) tells the others, which sweep the store at once instead of
//! at their next poll. When and how often is the dispatcher's decision
//! (`inbox::dispatcher::wakeups`): never inside an intake transaction, since a `NOTIFY` takes a
//! cluster-wide lock at commit that would serialise the webhooks' commits; here it is a
//! statement of its own, at most one per 20 ms per replica.
//!
//! A conversation's change of hands (or opt-out) is announced on the same channel, after the
//! change's commit, by the replica that made it: rare, so never spaced.

use super::wake::{state_payload, WAKE_CHANNEL};
use super::PgStore;
use crate::inbox::store::StoreError;
use crate::inbox::LaneKey;

impl PgStore {
    /// `NOTIFY` the other replicas, payload empty: "sweep the store", not a conversation (the
    /// receiver starts what it has slots for, in the feeder's fair order).
    pub(crate) async fn hint_work(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT pg_notify($1, '')")
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&WAKE_CHANNEL])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl PgStore {
    /// `NOTIFY` the other replicas that `lane` changed hands or opted out or back in.
    pub(crate) async fn announce_conversation_change(
        &self,
        lane: &LaneKey,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&WAKE_CHANNEL, &state_payload(lane)])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// See `Store::conversation_changed_elsewhere`.
    pub(crate) async fn conversation_changed_elsewhere(&self) {
        self.inner.conversation_changes.notified().await
    }
}
