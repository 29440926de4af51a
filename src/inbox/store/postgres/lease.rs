//! Conversation leases: which replica answers a conversation now.
//!
//! A claim (`wagate_claim`, migration 0003, in the claim's own transaction) locks the
//! conversation's `leases` row with `FOR UPDATE SKIP LOCKED` (a replica in the middle of
//! claiming or writing it is skipped, not waited for), takes it when it is free, ours, or
//! expired, and gives it a new `fence` from the `lease_fence` sequence. A lease is free
//! (`owner` NULL) once its turn closed with nothing else pending; a replica that stops with
//! turns running hands its leases back by expiring them, keeping itself as `owner`, so the
//! next claim knows it takes another process's interrupted turn over. The lease expires [`LEASE`] after the claim unless the process's
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
    /// The claim found parts held for the 24-hour window in this conversation (sent first by
    /// the turn); without, the turn need not look for them.
    pub(crate) has_held_parts: bool,
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

    /// This process holds the lane and its claim found no parts held for the 24-hour window.
    pub(crate) fn has_no_held_parts(&self, lane: &LaneKey) -> bool {
        self.lock().get(lane).is_some_and(|h| !h.has_held_parts)
    }

    /// Parts of the lane were just held for the 24-hour window.
    pub(crate) fn note_held_parts(&self, lane: &LaneKey) {
        if let Some(held) = self.lock().get_mut(lane) {
            held.has_held_parts = true;
        }
    }

    pub(crate) fn by_turn(&self, turn_id: i64) -> Option<(LaneKey, Held)> {
        self.lock()
            .iter()
            .find(|(_, h)| h.turn_id == turn_id)
            .map(|(l, h)| (l.clone(), h.clone()))
    }

    pub(crate) fn snapshot(&self) -> Vec<(LaneKey, Held)> {
        self.lock()
            .iter()
            .map(|(l, h)| (l.clone(), h.clone()))
            .collect()
    }

    pub(crate) fn drain(&self) -> Vec<(LaneKey, Held)> {
        self.lock().drain().collect()
    }
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

/// The leases of `$2`, `$3`, `$4` (keys and fences side by side, as [`Keys`]) that this
/// replica (`$1`) still holds, locked in key order. Every statement that locks several lease
/// rows locks them in this order (the closes written together, `wagate_finish_answered` in
/// migration 6, too), so two of them never wait for each other in a cycle; statements on one
/// conversation lock one row and cannot close one.
const HELD_IN_KEY_ORDER: &str = "SELECT l.phone_number_id, l.customer FROM leases l
     JOIN unnest($2::text[], $3::text[], $4::bigint[]) AS h(pnid, customer, fence)
       ON l.phone_number_id = h.pnid AND l.customer = h.customer
     WHERE l.owner = $1 AND l.fence = h.fence
     ORDER BY l.phone_number_id, l.customer FOR UPDATE OF l";

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
            if let Err(e) = beat(&inner).await.map(drop) {
                tracing::warn!(error = %e, "cannot extend this replica's conversation leases");
            }
        }
    });
}

pub(crate) async fn beat(inner: &Inner) -> Result<Vec<i64>, StoreError> {
    let held = Keys::of(&inner.leases.snapshot());
    if held.fences.is_empty() {
        return Ok(Vec::new());
    }
    let client = inner.client().await?;
    // By key, not by owner: `leases` has no index on `owner`, so its updates stay HOT.
    let stmt = client
        .prepare_cached(&format!(
            "UPDATE leases l SET expires_at = now() + $5::float8 * interval '1 millisecond'
                 FROM ({HELD_IN_KEY_ORDER}) AS k
                 WHERE l.phone_number_id = k.phone_number_id AND l.customer = k.customer
                 RETURNING l.fence"
        ))
        .await
        .map_err(|e| inner.error(e))?;
    let ms = LEASE.as_millis() as f64;
    let kept: Vec<i64> = client
        .query(
            &stmt,
            &[
                &inner.replica,
                &held.pnids,
                &held.customers,
                &held.fences,
                &ms,
            ],
        )
        .await
        .map_err(|e| inner.error(e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // A fence missing from the answer may just have been given up or replaced by this
    // replica's own close or claim, committed while the statement ran but not yet in this
    // process's map: under load that gap is long enough to matter. Only a conversation whose
    // row now names another owner was taken over (rare: one read then).
    let missing: Vec<usize> = (0..held.fences.len())
        .filter(|&k| !kept.contains(&held.fences[k]))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let pick = |v: &[String]| missing.iter().map(|&k| v[k].clone()).collect::<Vec<_>>();
    let fences: Vec<i64> = missing.iter().map(|&k| held.fences[k]).collect();
    let taken: Vec<i64> = client
        .query(
            "SELECT h.fence FROM unnest($2::text[], $3::text[], $4::bigint[])
                 AS h(pnid, customer, fence)
             JOIN leases l ON l.phone_number_id = h.pnid AND l.customer = h.customer
             WHERE l.owner <> $1",
            &[
                &inner.replica,
                &pick(&held.pnids),
                &pick(&held.customers),
                &fences,
            ],
        )
        .await
        .map_err(|e| inner.error(e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for lost in &taken {
        tracing::warn!(
            fence = lost,
            "another replica took a conversation over from this one; its turn stops"
        );
        inner.leases.remove_fence(*lost);
    }
    Ok(taken)
}

/// Held leases as the statements take them: keys and fences side by side.
struct Keys {
    pnids: Vec<String>,
    customers: Vec<String>,
    fences: Vec<i64>,
}

impl Keys {
    fn of(held: &[(LaneKey, Held)]) -> Keys {
        Keys {
            pnids: held
                .iter()
                .map(|(l, _)| l.phone_number_id.clone())
                .collect(),
            customers: held.iter().map(|(l, _)| l.user.clone()).collect(),
            fences: held.iter().map(|(_, h)| h.fence).collect(),
        }
    }
}

/// Give every lease this process holds back (graceful shutdown): other replicas take the
/// conversations over at once instead of after the expiry. The leases expire now but keep
/// this replica as owner: a turn still running here is another process's to resume, and its
/// parts left `sending` wait for their status (see `wagate_claim`).
pub(crate) async fn release_all(inner: &Inner) -> Result<(), StoreError> {
    let held = Keys::of(&inner.leases.drain());
    if held.fences.is_empty() {
        return Ok(());
    }
    let client = inner.client().await?;
    client
        .execute(
            &format!(
                "UPDATE leases l SET expires_at = now() FROM ({HELD_IN_KEY_ORDER}) AS k
                 WHERE l.phone_number_id = k.phone_number_id AND l.customer = k.customer"
            ),
            &[&inner.replica, &held.pnids, &held.customers, &held.fences],
        )
        .await
        .map_err(|e| inner.error(e))?;
    Ok(())
}
