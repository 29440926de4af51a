//! Who has each conversation on PostgreSQL: the agent or a person (`conversations`), changed
//! by a take-over, a release, or a customer's keyword at intake (`keyword_handoffs`, run
//! inside the webhook's transaction). The same rules as SQLite's `conversations.rs`.
//!
//! Several replicas change the same row: `hand_over` and `release` are one conditional
//! statement each (`... WHERE state <> 'human'`), so two operators taking a conversation at
//! once on two replicas get one `true` and one `false`, and one notice goes out.

use super::super::conversations::CLOSED_AT_HANDOFF;
use super::super::now_millis;
use super::super::{Batch, Holder, StoreError};
use super::outbox::queue;
use super::PgStore;
use crate::inbox::LaneKey;
use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

/// The intake step: the batch's keyword handoffs, inside the webhook's transaction. A
/// redelivered keyword (its message already recorded) changes nothing. Returns the
/// conversations handed over by this batch. (The messages of conversations a person has are
/// then held by `intake.rs`, which sees this step's changes in the same transaction.)
pub(crate) async fn keyword_handoffs<C: GenericClient>(
    c: &C,
    batch: &Batch,
) -> Result<Vec<LaneKey>, Error> {
    let mut handed = Vec::new();
    for k in &batch.handoffs {
        let seen = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM inbound WHERE message_id = $1)")
            .await?;
        let seen: bool = c.query_one(&seen, &[&k.message_id]).await?.get(0);
        if seen {
            continue; // a redelivery: the first delivery already handed it over
        }
        if hand_over(c, &k.lane, "keyword", None).await? {
            queue(c, &k.lane, "agent", "", &k.notice).await?;
            handed.push(k.lane.clone());
        }
    }
    Ok(handed)
}

async fn holder<C: GenericClient>(c: &C, lane: &LaneKey) -> Result<Holder, Error> {
    let stmt = c
        .prepare_cached(
            "SELECT state FROM conversations WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    let row = c
        .query_opt(&stmt, &[&lane.phone_number_id, &lane.user])
        .await?;
    Ok(match row.map(|r| r.get::<_, String>(0)).as_deref() {
        Some("human") => Holder::Human,
        _ => Holder::Agent,
    })
}

/// To `human`; `false` when it already was. Messages still waiting for the agent are closed
/// (a running turn is stopped by the caller).
async fn hand_over<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
    trigger: &str,
    reason: Option<&str>,
) -> Result<bool, Error> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO conversations (phone_number_id, customer, state, since, trigger, reason)
             VALUES ($1, $2, 'human', $3, $4, $5)
             ON CONFLICT (phone_number_id, customer) DO UPDATE SET
                 state = 'human', since = EXCLUDED.since, trigger = EXCLUDED.trigger,
                 reason = EXCLUDED.reason, last_operator_at = NULL
             WHERE conversations.state <> 'human'",
        )
        .await?;
    let changed = c
        .execute(
            &stmt,
            &[
                &lane.phone_number_id,
                &lane.user,
                &now_millis(),
                &trigger,
                &reason,
            ],
        )
        .await?;
    if changed > 0 {
        let close = c
            .prepare_cached(
                "UPDATE inbound SET state = 'skipped', note = $3
                 WHERE phone_number_id = $1 AND customer = $2 AND state = 'pending'",
            )
            .await?;
        c.execute(
            &close,
            &[&lane.phone_number_id, &lane.user, &CLOSED_AT_HANDOFF],
        )
        .await?;
    }
    Ok(changed > 0)
}

async fn release<C: GenericClient>(c: &C, lane: &LaneKey, trigger: &str) -> Result<bool, Error> {
    let stmt = c
        .prepare_cached(
            "UPDATE conversations SET state = 'agent', since = $3, trigger = $4, reason = NULL
             WHERE phone_number_id = $1 AND customer = $2 AND state = 'human'",
        )
        .await?;
    let changed = c
        .execute(
            &stmt,
            &[&lane.phone_number_id, &lane.user, &now_millis(), &trigger],
        )
        .await?;
    Ok(changed > 0)
}

impl PgStore {
    pub(crate) async fn holder(&self, lane: LaneKey) -> Result<Holder, StoreError> {
        let c = self.client().await?;
        holder(&c, &lane).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn hand_over(
        &self,
        lane: LaneKey,
        trigger: &'static str,
        reason: Option<String>,
        notice: Vec<String>,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        let changed = hand_over(&tx, &lane, trigger, reason.as_deref())
            .await
            .map_err(pg)?;
        if changed && !notice.is_empty() {
            queue(&tx, &lane, "agent", "", &notice).await.map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(changed)
    }

    pub(crate) async fn release(
        &self,
        lane: LaneKey,
        trigger: &'static str,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        release(&c, &lane, trigger).await.map_err(|e| self.error(e))
    }
}
