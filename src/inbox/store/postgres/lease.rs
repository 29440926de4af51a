//! Conversation leases: which replica answers a conversation now.
//!
//! A claim (in the claim's own transaction) locks the conversation's `leases` row with
//! `FOR UPDATE SKIP LOCKED` (a replica in the middle of claiming or writing it is skipped, not
//! waited for), takes it when it is free, ours, or expired, and gives it a new `fence` from the
//! `lease_fence` sequence. The lease expires [`LEASE`] after the claim unless the process's
//! one heartbeat task extends it; a replica killed with kill -9 stops extending, and after the
//! expiry any other replica's claim takes the conversation over.
//!
//! Fencing: this process remembers the fence of each conversation it holds. Every write of a
//! turn's outcome, of a part's state and of the turn's memory checks, in the same statement or
//! transaction, that the turn's conversation still carries one of those fences with this
//! replica as owner (locking the lease row for the statement, so a takeover cannot commit in
//! between). A replica that was paused past its lease finds the fence changed and gets
//! [`StoreError::LeaseLost`]: it stops the turn and sends nothing more.

use super::Inner;
use crate::inbox::store::StoreError;
use crate::inbox::LaneKey;
use deadpool_postgres::Transaction;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

/// How long a claim lasts without a heartbeat: a dead replica's conversations wait at most
/// this long (plus a feeder's sweep) before another replica takes them over.
pub(crate) const LEASE: Duration = Duration::from_secs(25);
/// How often the heartbeat extends this process's leases: three chances per lease.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(8);

/// A conversation this process holds.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) fence: i64,
    /// The turn the lease was taken for (the latest claim).
    pub(crate) turn_id: i64,
    /// Unix ms (this process's clock, as the confirm window's deadline is checked against it)
    /// when this replica took the conversation over from another replica whose lease had
    /// expired: the confirm window of parts that one left `sending` starts here.
    pub(crate) taken_over_at: Option<i64>,
}

/// The conversations this process holds, by lane.
#[derive(Default)]
pub(crate) struct Leases {
    held: Mutex<HashMap<LaneKey, Held>>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LaneKey, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, lane: LaneKey, held: Held) {
        self.lock().insert(lane, held);
    }

    pub(crate) fn remove(&self, lane: &LaneKey) {
        self.lock().remove(lane);
    }

    /// Forget the lane only if it still has this fence (a newer claim keeps its entry).
    pub(crate) fn remove_fence(&self, fence: i64) {
        self.lock().retain(|_, h| h.fence != fence);
    }

    /// Every fence this process holds: what each fenced write carries.
    pub(crate) fn fences(&self) -> Vec<i64> {
        self.lock().values().map(|h| h.fence).collect()
    }

    pub(crate) fn by_turn(&self, turn_id: i64) -> Option<(LaneKey, Held)> {
        self.lock()
            .iter()
            .find(|(_, h)| h.turn_id == turn_id)
            .map(|(l, h)| (l.clone(), h.clone()))
    }

    pub(crate) fn drain(&self) -> Vec<(LaneKey, Held)> {
        self.lock().drain().collect()
    }
}

/// What a claim found on the conversation's lease row.
pub(crate) enum Claim {
    /// Ours now (locked by the transaction until it commits); `taken_over` unless this
    /// process held it already: another replica's expired lease, or one given back (a
    /// replica stopped with turns still running), so a turn resumed from it is another
    /// process's interrupted turn.
    Free { taken_over: bool },
    /// Another live replica has it, or is claiming or writing it right now.
    Busy,
}

/// Make sure each lane has its lease row, in one statement and in key order: two webhooks
/// claiming the same new conversations then wait for each other in the same order (never a
/// deadlock).
pub(crate) async fn ensure_rows(
    tx: &Transaction<'_>,
    lanes: &[LaneKey],
) -> Result<(), tokio_postgres::Error> {
    if lanes.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&LaneKey> = lanes.iter().collect();
    sorted.sort();
    sorted.dedup();
    let pnids: Vec<&str> = sorted.iter().map(|l| l.phone_number_id.as_str()).collect();
    let users: Vec<&str> = sorted.iter().map(|l| l.user.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO leases (phone_number_id, customer)
             SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT (phone_number_id, customer) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&pnids, &users]).await?;
    Ok(())
}

/// Lock the lane's lease row for this transaction, if it is free, ours or expired.
pub(crate) async fn lock_for_claim(
    tx: &Transaction<'_>,
    replica: &str,
    lane: &LaneKey,
) -> Result<Claim, tokio_postgres::Error> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO leases (phone_number_id, customer) VALUES ($1, $2)
             ON CONFLICT (phone_number_id, customer) DO NOTHING",
        )
        .await?;
    tx.execute(&insert, &[&lane.phone_number_id, &lane.user])
        .await?;
    let select = tx
        .prepare_cached(
            "SELECT owner, expires_at < now() FROM leases
             WHERE phone_number_id = $1 AND customer = $2 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let Some(row) = tx
        .query_opt(&select, &[&lane.phone_number_id, &lane.user])
        .await?
    else {
        return Ok(Claim::Busy);
    };
    let owner: Option<String> = row.get(0);
    let expired: bool = row.get(1);
    Ok(match owner {
        None => Claim::Free { taken_over: true },
        Some(owner) if owner == replica => Claim::Free { taken_over: false },
        Some(_) if expired => Claim::Free { taken_over: true },
        Some(_) => Claim::Busy,
    })
}

/// Take the locked lease with a new fence; returns the fence.
pub(crate) async fn take(
    tx: &Transaction<'_>,
    replica: &str,
    lane: &LaneKey,
) -> Result<i64, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "UPDATE leases SET owner = $3, fence = nextval('lease_fence'),
                 expires_at = now() + $4::float8 * interval '1 millisecond', taken_at = now()
             WHERE phone_number_id = $1 AND customer = $2
             RETURNING fence",
        )
        .await?;
    let ms = LEASE.as_millis() as f64;
    let row = tx
        .query_one(&stmt, &[&lane.phone_number_id, &lane.user, &replica, &ms])
        .await?;
    Ok(row.get(0))
}

/// Give the lane up (its turn finished and nothing else is pending), in the caller's
/// transaction, which holds the row.
pub(crate) async fn release(
    tx: &Transaction<'_>,
    lane: &LaneKey,
) -> Result<(), tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "UPDATE leases SET owner = NULL, expires_at = now()
             WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    tx.execute(&stmt, &[&lane.phone_number_id, &lane.user])
        .await?;
    Ok(())
}

/// The SQL condition, for statements on one turn's rows: the turn (`$1`) belongs to a
/// conversation this replica (`$me`) holds with one of its fences (`$fences`). Locks the
/// lease row FOR SHARE for the statement, so a takeover waits for (or skips) it.
pub(crate) fn turn_fenced(me: &str, fences: &str) -> String {
    format!(
        "SELECT 1 FROM leases l JOIN turns t
             ON t.phone_number_id = l.phone_number_id AND t.customer = l.customer
         WHERE t.id = $1 AND l.owner = {me} AND l.fence = ANY({fences}) FOR SHARE OF l"
    )
}

/// One task per process: extends the leases this process holds every [`HEARTBEAT`]; a lease
/// found taken over is forgotten (its turn's next write gets `LeaseLost`). Ends when the store
/// is dropped.
pub(crate) fn spawn_heartbeat(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            if let Err(e) = beat(&inner).await {
                tracing::warn!(error = %e, "cannot extend this replica's conversation leases");
            }
        }
    });
}

pub(crate) async fn beat(inner: &Inner) -> Result<(), StoreError> {
    let fences = inner.leases.fences();
    if fences.is_empty() {
        return Ok(());
    }
    let client = inner.client().await?;
    let stmt = client
        .prepare_cached(
            "UPDATE leases SET expires_at = now() + $3::float8 * interval '1 millisecond'
             WHERE owner = $1 AND fence = ANY($2) RETURNING fence",
        )
        .await
        .map_err(|e| inner.error(e))?;
    let ms = LEASE.as_millis() as f64;
    let kept: Vec<i64> = client
        .query(&stmt, &[&inner.replica, &fences, &ms])
        .await
        .map_err(|e| inner.error(e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for lost in fences.iter().filter(|f| !kept.contains(f)) {
        tracing::warn!(
            fence = lost,
            "another replica took a conversation over from this one; its turn stops"
        );
        inner.leases.remove_fence(*lost);
    }
    Ok(())
}

/// Give every lease this process holds back (graceful shutdown): other replicas take the
/// conversations over at once instead of after the expiry.
pub(crate) async fn release_all(inner: &Inner) -> Result<(), StoreError> {
    let held = inner.leases.drain();
    if held.is_empty() {
        return Ok(());
    }
    let fences: Vec<i64> = held.iter().map(|(_, h)| h.fence).collect();
    let client = inner.client().await?;
    client
        .execute(
            "UPDATE leases SET owner = NULL, expires_at = now() WHERE owner = $1 AND fence = ANY($2)",
            &[&inner.replica, &fences],
        )
        .await
        .map_err(|e| inner.error(e))?;
    Ok(())
}
