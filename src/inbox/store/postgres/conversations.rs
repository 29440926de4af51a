//! Who has each conversation, on PostgreSQL: what the handoff service loads at start. (The
//! changes, hand over and release, are among the methods still to write: `pending.rs`.)

use super::PgStore;
use crate::inbox::store::{HumanConversation, OptedOut, StoreError};
use crate::inbox::LaneKey;

impl PgStore {
    /// Every conversation a person has, longest first.
    pub(crate) async fn human_conversations(&self) -> Result<Vec<HumanConversation>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone_number_id, customer, since, last_operator_at, trigger, reason
                 FROM conversations WHERE state = 'human' ORDER BY since",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .iter()
            .map(|r| HumanConversation {
                lane: LaneKey {
                    phone_number_id: r.get(0),
                    user: r.get(1),
                },
                since: r.get(2),
                last_operator_at: r.get(3),
                trigger: r.get(4),
                reason: r.get(5),
            })
            .collect())
    }

    /// Every opted-out conversation.
    pub(crate) async fn opted_out_conversations(&self) -> Result<Vec<OptedOut>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone_number_id, customer, COALESCE(opted_out_at, since),
                        COALESCE(opt_source, 'keyword'), COALESCE(opt_ts, 0)
                 FROM conversations WHERE opted_out",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .iter()
            .map(|r| OptedOut {
                lane: LaneKey {
                    phone_number_id: r.get(0),
                    user: r.get(1),
                },
                since: r.get(2),
                source: r.get(3),
                timestamp: r.get(4),
            })
            .collect())
    }
}
