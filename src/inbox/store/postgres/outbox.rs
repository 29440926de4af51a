//! The outbox on PostgreSQL: messages to a customer that are not a turn's reply (operator
//! replies, the handoff notice, the opt-out confirmation, the window's reopen template), saved
//! with their parts (reply parts keyed by the negated outbox id) before sending, as SQLite's
//! `outbox.rs` does.
//!
//! Several replicas run the outbox sender: each message is claimed by one of them
//! (`claimed_by`, `claimed_until`: [`CLAIM`], renewed by every poll of its owner, so a replica
//! that dies leaves its messages to the others after the claim runs out), and never while an
//! earlier message of the same conversation is claimed by another replica, so a customer's
//! messages go out in order.

use super::super::parts::outbox_key;
use super::super::{OutboxItem, StoreError};
use super::parts::ReplyRows;
use super::PgStore;
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Error;

/// How long a replica's claim on an outbox message lasts without a poll renewing it. Longer
/// than a poll can take to send its [`CLAIM_BATCH`] messages (each within the Graph client's
/// retry budget of about a minute), so a claim never runs out under a live replica that is
/// still going to send the message. Each part's mark `sending` renews it too
/// (`send_fence.rs`), and is refused once it ran out.
pub(super) const CLAIM: std::time::Duration = std::time::Duration::from_secs(600);
/// Messages claimed per poll: few, so a slow poll does not sit on many.
const CLAIM_BATCH: i64 = 5;

fn now() -> i64 {
    super::super::now_millis()
}

/// Insert the parts of outbox message `id` (text parts, or any message), in order.
async fn save_parts<C: GenericClient>(
    c: &C,
    id: i64,
    messages: &[OutgoingMessage],
) -> Result<(), Error> {
    let rows = ReplyRows::of(messages);
    let stmt = c
        .prepare_cached(
            "INSERT INTO reply_parts (turn_id, idx, text, message)
             SELECT $1, p.idx, p.text, p.message
             FROM unnest($2::int[], $3::text[], $4::text[]) AS p(idx, text, message)
             ON CONFLICT (turn_id, idx) DO NOTHING",
        )
        .await?;
    c.execute(
        &stmt,
        &[&outbox_key(id), &rows.idx, &rows.texts, &rows.json],
    )
    .await?;
    Ok(())
}

/// Queue a message (its parts already formatted and split); returns its id.
pub(super) async fn queue<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
    author: &str,
    text: &str,
    parts: &[String],
) -> Result<i64, Error> {
    let text = if text.is_empty() {
        parts.join("\n")
    } else {
        text.to_string()
    };
    let stmt = c
        .prepare_cached(
            "INSERT INTO outbox (phone_number_id, customer, author, text, created_at, state)
             VALUES ($1, $2, $3, $4, $5, 'pending') RETURNING id",
        )
        .await?;
    let id: i64 = c
        .query_one(
            &stmt,
            &[&lane.phone_number_id, &lane.user, &author, &text, &now()],
        )
        .await?
        .get(0);
    let messages: Vec<OutgoingMessage> = parts.iter().map(OutgoingMessage::text).collect();
    save_parts(c, id, &messages).await?;
    Ok(id)
}

/// Queue `template` for `lane` unless one was already queued to reopen the window closed since
/// the customer message at `reopens` (unix ms). Returns its id when queued now.
async fn queue_reopen_template<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
    template: &OutgoingMessage,
    reopens: i64,
) -> Result<Option<i64>, Error> {
    // The lock on the conversation's outbox rows is not enough for a first template (there is
    // no row yet): a transaction-level advisory lock on the conversation serialises two
    // replicas holding for the same silence.
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2::text, 0))",
        &[&lane.phone_number_id, &lane.user],
    )
    .await?;
    let queued = c
        .query_opt(
            "SELECT id FROM outbox WHERE phone_number_id = $1 AND customer = $2 AND reopens = $3",
            &[&lane.phone_number_id, &lane.user, &reopens],
        )
        .await?;
    if queued.is_some() {
        return Ok(None);
    }
    let id: i64 = c
        .query_one(
            "INSERT INTO outbox (phone_number_id, customer, author, text, created_at, state, reopens)
             VALUES ($1, $2, 'agent', $3, $4, 'pending', $5) RETURNING id",
            &[
                &lane.phone_number_id,
                &lane.user,
                &template.describe(),
                &now(),
                &reopens,
            ],
        )
        .await?
        .get(0);
    save_parts(c, id, std::slice::from_ref(template)).await?;
    Ok(Some(id))
}

/// Claim (or renew this replica's claim on) up to [`CLAIM_BATCH`] pending messages, oldest
/// first, skipping any behind an earlier message of its conversation that another replica
/// holds; returns them with their parts.
async fn claim_pending<C: GenericClient>(c: &C, replica: &str) -> Result<Vec<OutboxItem>, Error> {
    let now = now();
    let until = now + i64::try_from(CLAIM.as_millis()).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "WITH free AS (
                 SELECT o.id FROM outbox o
                 WHERE o.state = 'pending'
                   AND (o.claimed_by IS NULL OR o.claimed_by = $1 OR o.claimed_until < $2)
                   AND NOT EXISTS (SELECT 1 FROM outbox e
                       WHERE e.phone_number_id = o.phone_number_id AND e.customer = o.customer
                         AND e.state = 'pending' AND e.id < o.id
                         AND e.claimed_by <> $1 AND e.claimed_until >= $2)
                 ORDER BY o.id LIMIT $4
                 FOR UPDATE OF o SKIP LOCKED
             )
             UPDATE outbox o SET claimed_by = $1, claimed_until = $3
             FROM free WHERE o.id = free.id
             RETURNING o.id, o.phone_number_id, o.customer, o.author, o.text, o.created_at,
                 (SELECT MAX(p.created_at) FROM outbox p WHERE p.phone_number_id = o.phone_number_id
                    AND p.customer = o.customer AND p.author = 'operator' AND p.id < o.id)",
            &[&replica, &now, &until, &CLAIM_BATCH],
        )
        .await?;
    let mut items: Vec<OutboxItem> = rows
        .iter()
        .map(|r| OutboxItem {
            id: r.get(0),
            lane: LaneKey {
                phone_number_id: r.get(1),
                user: r.get(2),
            },
            author: r.get(3),
            text: r.get(4),
            parts: Vec::new(),
            created_at: r.get(5),
            previous_reply_at: r.get(6),
        })
        .collect();
    items.sort_by_key(|item| item.id);
    Ok(items)
}

impl PgStore {
    pub(crate) async fn queue_operator_reply(
        &self,
        lane: LaneKey,
        text: String,
        parts: Vec<String>,
    ) -> Result<Option<i64>, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        // The conversation's row locked first (made if missing): a STOP recorded by another
        // replica at the same moment locks it too, so it commits either before this (and the
        // check below sees it) or after (and cancels this queued reply).
        tx.execute(
            "INSERT INTO conversations (phone_number_id, customer, state, since)
             VALUES ($1, $2, 'agent', $3) ON CONFLICT DO NOTHING",
            &[&lane.phone_number_id, &lane.user, &now()],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "SELECT 1 FROM conversations WHERE phone_number_id = $1 AND customer = $2 FOR UPDATE",
            &[&lane.phone_number_id, &lane.user],
        )
        .await
        .map_err(pg)?;
        if super::opt_out::is_opted_out(&tx, &lane).await.map_err(pg)? {
            return Ok(None);
        }
        let id = queue(&tx, &lane, "operator", &text, &parts)
            .await
            .map_err(pg)?;
        tx.execute(
            "UPDATE conversations SET last_operator_at = $3
             WHERE phone_number_id = $1 AND customer = $2",
            &[&lane.phone_number_id, &lane.user, &now()],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(id))
    }

    pub(crate) async fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        let mut items = claim_pending(&tx, &self.inner.replica).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        drop(c);
        for item in &mut items {
            item.parts = self
                .load_reply(outbox_key(item.id))
                .await?
                .unwrap_or_default();
        }
        Ok(items)
    }

    pub(crate) async fn hold_for_window(
        &self,
        lane: LaneKey,
        key: i64,
        from: usize,
        template: Option<OutgoingMessage>,
        reopens: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        let from = i32::try_from(from).unwrap_or(i32::MAX);
        let held = self
            .fenced_in(
                &tx,
                key,
                "UPDATE reply_parts SET held_at = $5, sending_at = NULL
                 WHERE turn_id = $1 AND idx >= $4 AND outbound_id IS NULL
                   AND EXISTS (SELECT 1 FROM lease)",
                &[&from, &now()],
            )
            .await?;
        if !held {
            drop(tx);
            return Err(StoreError::LeaseLost { turn_id: key });
        }
        let queued = match &template {
            Some(template) => queue_reopen_template(&tx, &lane, template, reopens)
                .await
                .map_err(pg)?,
            None => None,
        };
        // Before the commit: from it on, this replica's turns of the lane look for held parts.
        self.inner.leases.note_held_parts(&lane);
        tx.commit().await.map_err(pg)?;
        Ok(queued)
    }

    pub(crate) async fn finish_outbox(
        &self,
        id: i64,
        failed_part: Option<usize>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let pg = |e| self.error(e);
        let tx = c.transaction().await.map_err(pg)?;
        let state = if error.is_some() { "failed" } else { "sent" };
        tx.execute(
            "UPDATE outbox SET state = $2, error = $3, claimed_by = NULL, claimed_until = NULL
             WHERE id = $1",
            &[&id, &state, &error],
        )
        .await
        .map_err(pg)?;
        if let (Some(index), Some(error)) = (failed_part, &error) {
            let idx = i32::try_from(index).unwrap_or(i32::MAX);
            tx.execute(
                "UPDATE reply_parts SET error = $3, sending_at = NULL, held_at = NULL
                 WHERE turn_id = $1 AND idx = $2",
                &[&outbox_key(id), &idx, error],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(())
    }
}

impl PgStore {
    /// A statement fenced by the lease of key `$1`'s conversation (see `parts::fenced_sql`),
    /// inside the caller's transaction; `false` when this replica no longer holds it (nothing
    /// was written).
    async fn fenced_in<C: GenericClient>(
        &self,
        c: &C,
        key: i64,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        let fences = self.inner.leases.fences();
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&key, &self.inner.replica, &fences];
        all.extend_from_slice(params);
        let stmt = c
            .prepare_cached(&super::parts::fenced_sql(key, statement))
            .await
            .map_err(|e| self.error(e))?;
        let row = c.query_one(&stmt, &all).await.map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }
}
