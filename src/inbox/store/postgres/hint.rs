//! The sending half of the wake-ups (`wake.rs` listens): a replica that leaves work it cannot
//! start now (every turn slot busy) tells the others, which sweep the store at once instead of
//! at their next poll. When and how often is the dispatcher's decision
//! (`inbox::dispatcher::wakeups`): never inside an intake transaction, since a `NOTIFY` takes a
//! cluster-wide lock at commit that would serialise the webhooks' commits; here it is a
//! statement of its own, at most one per 20 ms per replica.

use super::wake::WAKE_CHANNEL;
use super::PgStore;
use crate::inbox::store::StoreError;

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
