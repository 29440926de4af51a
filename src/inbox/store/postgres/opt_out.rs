//! Opt-out on PostgreSQL: the same rules as SQLite's `opt_out.rs` (columns of
//! `conversations`, changed inside the webhook's own transaction, so a redelivered STOP, whose
//! message id is already recorded, changes nothing and sends nothing).
//!
//! Two replicas recording a STOP and a START of one customer at once: each change is one
//! conditional upsert on the conversation's row (`opt_ts` orders them by Meta's timestamp),
//! and the row lock serialises them; the later timestamp wins whichever commits last.

use super::super::now_millis;
use super::super::opt_out::{
    close_for_stop, close_while_opted_out, Applied, Changed, WHILE_OPTED_OUT,
};
use super::super::{Batch, OptChange, StoreError};
use super::outbox::queue;
use super::PgStore;
use crate::inbox::LaneKey;
use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

/// The intake step, before the handoff's (see SQLite's `opt_out::apply`, whose walk this
/// repeats statement for statement). Returns the conversations this batch opted out (with
/// Meta's timestamp) and those it resumed.
pub(crate) async fn apply<C: GenericClient>(c: &C, batch: &mut Batch) -> Result<Applied, Error> {
    let Batch {
        messages,
        opt_changes,
        handoffs,
        ..
    } = batch;
    let mut changed = Changed::default();
    for change in opt_changes.iter().filter(|c| c.message_id.is_none()) {
        changed.note(change, change_state(c, change).await?);
    }
    let mut known: Vec<(LaneKey, bool)> = Vec::new();
    for i in 0..messages.len() {
        let (earlier, rest) = messages.split_at_mut(i);
        let m = &mut rest[0];
        let change = opt_changes
            .iter()
            .find(|c| c.message_id.as_deref() == Some(m.message_id.as_str()));
        if let Some(change) = change {
            if !recorded(c, &m.message_id).await? {
                changed.note(change, change_state(c, change).await?);
            }
            known.retain(|(lane, _)| *lane != m.lane);
            known.push((m.lane.clone(), change.opt_out));
            if change.opt_out {
                close_for_stop(m, earlier, handoffs);
            }
            continue;
        }
        let out = match known.iter().find(|(lane, _)| *lane == m.lane) {
            Some((_, out)) => *out,
            None => {
                let out = is_opted_out(c, &m.lane).await?;
                known.push((m.lane.clone(), out));
                out
            }
        };
        if out {
            close_while_opted_out(m, handoffs);
        }
    }
    Ok(changed.into_applied())
}

async fn recorded<C: GenericClient>(c: &C, message_id: &str) -> Result<bool, Error> {
    let stmt = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM inbound WHERE message_id = $1)")
        .await?;
    Ok(c.query_one(&stmt, &[&message_id]).await?.get(0))
}

/// Applies one change; `true` when the state changed. Opting out also closes the messages
/// still waiting for the agent, cancels unsent outbox messages and queues the confirmation.
async fn change_state<C: GenericClient>(c: &C, change: &OptChange) -> Result<bool, Error> {
    let lane = &change.lane;
    let now = now_millis();
    let source = change.source.as_str();
    let changed = if change.opt_out {
        let stmt = c
            .prepare_cached(
                "INSERT INTO conversations (phone_number_id, customer, state, since, opted_out,
                     opted_out_at, opt_source, opt_ts)
                 VALUES ($1, $2, 'agent', $3, TRUE, $3, $4, $5)
                 ON CONFLICT (phone_number_id, customer) DO UPDATE SET
                     opted_out = TRUE, opted_out_at = EXCLUDED.opted_out_at,
                     opt_source = EXCLUDED.opt_source, opt_ts = EXCLUDED.opt_ts
                 WHERE NOT conversations.opted_out
                   AND COALESCE(conversations.opt_ts, 0) <= EXCLUDED.opt_ts",
            )
            .await?;
        c.execute(
            &stmt,
            &[
                &lane.phone_number_id,
                &lane.user,
                &now,
                &source,
                &change.timestamp,
            ],
        )
        .await?
    } else {
        let stmt = c
            .prepare_cached(
                "UPDATE conversations SET opted_out = FALSE, opted_out_at = $3, opt_source = $4,
                     opt_ts = $5
                 WHERE phone_number_id = $1 AND customer = $2 AND opted_out
                   AND COALESCE(opt_ts, 0) <= $5",
            )
            .await?;
        c.execute(
            &stmt,
            &[
                &lane.phone_number_id,
                &lane.user,
                &now,
                &source,
                &change.timestamp,
            ],
        )
        .await?
    };
    if changed == 0 {
        return Ok(false);
    }
    if change.opt_out {
        let close = c
            .prepare_cached(
                "UPDATE inbound SET state = 'skipped', note = $3
                 WHERE phone_number_id = $1 AND customer = $2 AND state = 'pending'",
            )
            .await?;
        c.execute(
            &close,
            &[&lane.phone_number_id, &lane.user, &WHILE_OPTED_OUT],
        )
        .await?;
        let cancel = c
            .prepare_cached(
                "UPDATE outbox SET state = 'failed', error = $3
                 WHERE phone_number_id = $1 AND customer = $2 AND state = 'pending'",
            )
            .await?;
        c.execute(
            &cancel,
            &[&lane.phone_number_id, &lane.user, &WHILE_OPTED_OUT],
        )
        .await?;
        if !change.reply.is_empty() {
            queue(c, lane, "agent", "", &change.reply).await?;
        }
    }
    Ok(true)
}

pub(crate) async fn is_opted_out<C: GenericClient>(c: &C, lane: &LaneKey) -> Result<bool, Error> {
    let stmt = c
        .prepare_cached(
            "SELECT opted_out FROM conversations WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    let row = c
        .query_opt(&stmt, &[&lane.phone_number_id, &lane.user])
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
}

/// The business numbers `user` is opted out of: (phone_number_id, unix ms since, source), for
/// `wagate history`.
pub(super) async fn opted_out_of<C: GenericClient>(
    c: &C,
    user: &str,
) -> Result<Vec<(String, i64, String)>, Error> {
    let rows = c
        .query(
            "SELECT phone_number_id, COALESCE(opted_out_at, since), COALESCE(opt_source, 'keyword')
             FROM conversations WHERE customer = $1 AND opted_out ORDER BY phone_number_id",
            &[&user],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

impl PgStore {
    pub(crate) async fn is_opted_out(&self, lane: LaneKey) -> Result<bool, StoreError> {
        let c = self.client().await?;
        is_opted_out(&c, &lane).await.map_err(|e| self.error(e))
    }
}
