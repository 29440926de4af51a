//! The channel's rate limit (`rate_limit`) shared by every replica: a sliding window of send
//! grants in PostgreSQL. The sending side is `whatsapp::graph::shared_window`; this is the
//! database's half, one function call (one short transaction) per batch of a few slots.
//!
//! Tables: `rate_limit_channels` (one row per channel: the lock every grant takes, Meta's
//! 130429 pause, the grant clock) and `rate_limit_grants` (one row per batch: `slots` usable
//! from `granted_at` until `expires_at`, unix ms on the database's clock).
//!
//! Why the cap holds across replicas (never more than `max` sends start in any span
//! `[a, a + W)` of the window `W`). Every grant `i` of `c_i` slots is used only at instants
//! in `[s_i, e_i]` (granted at `s_i`, expiring at `e_i`: the replica stops using it at
//! "its request's departure + lease", which is no later than `s_i + lease`; see
//! `shared_window`). A span `[a, a + W)` therefore holds at most the sum of `c_i` over the
//! grants whose `[s_i, e_i]` meets it. Grants are made one at a time (the channel row is
//! locked `FOR UPDATE`) on a clock that never goes back (`grant_clock`), so when a new grant
//! of `c` slots is made at `t`, every earlier grant has `s_i <= t`, and the spans the new one
//! meets are those with `a` in `(t - W, t + lease]`. For such a span every earlier grant has
//! `s_i <= t < a + W`, so it is counted exactly when `e_i >= a`; the most of them are counted
//! for the smallest `a`, just above `t - W`: the grants with `e_i > t - W`. So granting only
//! `c <= max - sum(c_i : e_i > t - W)` keeps every span that meets the new grant within the
//! cap, and spans that do not meet it were within the cap before. (A grant handed back
//! settled shrinks `c_i` to the slots used and `e_i` to the last use: both still bound where
//! its sends happened, so the argument holds with the smaller values and unused slots stop
//! counting.) A slot reserved at `t` and used at `t + d` is thus counted in every window
//! containing `t + d`: the grant is counted until `e_i + W >= t + d + W`.
//!
//! Clocks: only the database's clock is used (`clock_timestamp()`), never a replica's. If it
//! stepped back, `grant_clock` holds grants at the last instant given out, which only
//! overcounts; a clock stepping forward (NTP correcting a slow clock) could let a window see
//! more than the cap by what the step skipped.

use super::super::{Backend, Store, StoreError};
use super::PgStore;
use crate::whatsapp::graph::shared_window::{
    SendSlots, SlotFuture, SlotGrant, SlotRequest, SlotsError,
};
use crate::whatsapp::graph::SharedRateLimit;
use std::sync::Arc;
use std::time::Duration;

/// The channel's key: `rate_limit` caps the whole WhatsApp channel (every number of it).
pub(crate) const CHANNEL: &str = "whatsapp";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The store's side of the shared window, given to the Graph client.
struct PgSendSlots {
    store: PgStore,
}

impl PgSendSlots {
    async fn reserve_now(&self, request: SlotRequest) -> Result<SlotGrant, StoreError> {
        let c = self.store.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT grant_id, granted, retry_in_ms
                 FROM wagate_reserve_send_slots($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await
            .map_err(|e| self.store.error(e))?;
        let want = i32::try_from(request.want).unwrap_or(i32::MAX);
        let max = i32::try_from(request.max_messages).unwrap_or(i32::MAX);
        let (settle_id, settle_used, settle_within) = match request.settle {
            Some(s) => (
                Some(s.grant_id),
                Some(i32::try_from(s.used).unwrap_or(i32::MAX)),
                Some(millis(s.used_within)),
            ),
            None => (None, None, None),
        };
        let row = c
            .query_one(
                &stmt,
                &[
                    &CHANNEL,
                    &want,
                    &max,
                    &millis(request.window),
                    &millis(request.lease),
                    &settle_id,
                    &settle_used,
                    &settle_within,
                ],
            )
            .await
            .map_err(|e| self.store.error(e))?;
        let granted: i32 = row.get(1);
        let retry_in: i64 = row.get(2);
        Ok(SlotGrant {
            id: row.get(0),
            granted: u32::try_from(granted).unwrap_or(0),
            retry_in: Duration::from_millis(u64::try_from(retry_in).unwrap_or(0)),
        })
    }

    async fn pause_now(&self, pause: Duration) -> Result<(), StoreError> {
        let c = self.store.client().await?;
        c.execute(
            "INSERT INTO rate_limit_channels AS ch (channel, paused_until)
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT + $2)
             ON CONFLICT (channel) DO UPDATE
                 SET paused_until = GREATEST(ch.paused_until, EXCLUDED.paused_until)",
            &[&CHANNEL, &millis(pause)],
        )
        .await
        .map_err(|e| self.store.error(e))?;
        Ok(())
    }
}

impl SendSlots for PgSendSlots {
    fn reserve(&self, request: SlotRequest) -> SlotFuture<'_, SlotGrant> {
        Box::pin(async move {
            self.reserve_now(request)
                .await
                .map_err(|e| SlotsError(e.to_string()))
        })
    }

    fn pause(&self, pause: Duration) -> SlotFuture<'_, ()> {
        Box::pin(async move {
            self.pause_now(pause)
                .await
                .map_err(|e| SlotsError(e.to_string()))
        })
    }
}

impl PgStore {
    /// The channel cap kept in this database, for every Graph client of this replica.
    pub(crate) fn shared_rate_limit(&self) -> SharedRateLimit {
        SharedRateLimit(Arc::new(PgSendSlots {
            store: self.clone(),
        }))
    }
}

impl Store {
    /// The channel cap shared by every replica on PostgreSQL, for the Graph clients; `None` on
    /// SQLite, where one process sends and its client keeps the window in memory.
    pub fn shared_rate_limit(&self) -> Option<SharedRateLimit> {
        match &self.backend {
            Backend::Postgres(db) => Some(db.shared_rate_limit()),
            Backend::Sqlite(_) => None,
        }
    }
}
