//! What the dispatcher does differently when several replicas share the store (PostgreSQL).
//!
//! A claim also takes the conversation's lease, so a lane runs in one process at a time; a
//! claim that finds another replica holding it gets nothing and the lane goes idle (the work
//! stays in the store for whoever holds or next takes it). A turn whose conversation was taken
//! over meanwhile ([`StoreError::LeaseLost`]) is dropped here: not closed, not retried, the new
//! owner answers it. Work recorded elsewhere reaches this replica through the
//! [`wakeups`](super::wakeups) (polling, and hints between replicas), and a lane that finished
//! a turn always asks the store for the next one (another replica may have recorded a message
//! for it, which no local notify announced). A lane this replica leaves to the backlog for
//! lack of a turn slot is hinted to the others, which may have one.
//!
//! On one process (SQLite) none of this applies: [`Replicas::others_may_record`] is `false`
//! and no hint goes out.

use super::{wakeups, AfterTurn};
use crate::inbox::{Store, StoreError};
use std::sync::{Arc, OnceLock};

/// The dispatcher's view of the other replicas: whether there are any, and the hints it sends
/// them.
pub(super) struct Replicas {
    /// Other processes share the store (PostgreSQL): messages may arrive through them.
    shared: bool,
    /// Set once the wake-up tasks start: hints to the other replicas, when they go out.
    hints: OnceLock<Arc<wakeups::Hints>>,
}

impl Replicas {
    pub(super) fn new(store: &Store) -> Self {
        Replicas {
            shared: store.is_shared(),
            hints: OnceLock::new(),
        }
    }

    /// The wake-up tasks started and hints go out (a shared store with `notify` on).
    pub(super) fn send_hints_with(&self, hints: Arc<wakeups::Hints>) {
        let _ = self.hints.set(hints);
    }

    /// Other replicas may record messages for any conversation, which no local notify
    /// announces: a lane that finished a turn must look in the store for its next one.
    pub(super) fn others_may_record(&self) -> bool {
        self.shared
    }

    /// This replica left a conversation to the backlog for lack of a turn slot: another
    /// replica may have one now (coalesced and spaced by the hint sender).
    pub(super) fn left_to_backlog(&self) {
        if let Some(hints) = self.hints.get() {
            hints.send();
        }
    }
}

/// The end of a turn could not be recorded. The turn stays `running` in the store; the lane's
/// next claim resumes it (and a restart would too). Unless the conversation was taken over.
pub(super) fn finish_failed(turn_id: i64, e: &StoreError) -> AfterTurn {
    if e.is_lease_lost() {
        return lease_lost(turn_id);
    }
    tracing::error!(turn_id, error = %e, "cannot record the end of a turn");
    AfterTurn::Claim {
        maybe_interrupted: true,
    }
}

/// Another replica took the conversation over (PostgreSQL): this turn stops here, is neither
/// retried nor closed by this replica (the new owner resumes it), and the lane goes idle.
pub(super) fn lease_lost(turn_id: i64) -> AfterTurn {
    tracing::warn!(
        turn_id,
        "another replica took this conversation over; this replica stops the turn"
    );
    AfterTurn::Idle
}
