//! Turn slots and the lanes that hold them, under one lock: a lane that finds no slot and the
//! feeder that hands slots out never miss each other (a slot freed while work waits in the
//! store always wakes the feeder).

use super::Dispatcher;
use crate::inbox::LaneKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) struct Slots {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Lanes with a task, and whether new work was notified since its last claim (`dirty`):
    /// a lane about to go idle looks at the store once more, so a message committed while it
    /// was finishing is never stranded.
    lanes: HashMap<LaneKey, bool>,
    /// Slots held (by lane tasks and reservations).
    running: usize,
    /// Bumped whenever the store may hold work no lane task looks at; `fed` is the value the
    /// feeder last saw fully served. Different: the feeder has work to find.
    backlog: u64,
    fed: u64,
    /// A conversation with work was left to the store for lack of a slot (or the feeder found
    /// one and had no slot for it), and the feeder has not swept to the end of the store since:
    /// until it has, a free slot is theirs, not a newcomer's. Work merely *unswept*
    /// (`backlog != fed`, e.g. after a periodic scan) does not hold newcomers back: with slots
    /// free the feeder starts it as well, and making every webhook wait for a sweep turned a
    /// busy moment into a permanent detour (each message recorded, left, swept and claimed by
    /// statements of their own, each of which kept the sweep from ever finishing;
    /// BENCHMARKS.md, "The backlog detour").
    waiting_for_slot: bool,
    /// Where the feeder's next page starts.
    cursor: Option<LaneKey>,
}

/// A turn slot; given back when dropped (waking the feeder if work waits).
pub(super) struct Slot {
    dispatcher: Arc<Dispatcher>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.dispatcher.slots.lock();
        inner.running -= 1;
        let wake = inner.backlog != inner.fed;
        drop(inner);
        if wake {
            self.dispatcher.feed.notify_one();
        }
    }
}

/// What the feeder could do with a conversation it found in the store.
pub(super) enum FromBacklog {
    /// A lane task was not running: it starts with this slot.
    Started(Slot),
    /// A lane task runs already; it was told to look again.
    Active,
    /// No slot free.
    Full,
}

impl Inner {
    fn has_slot_for_newcomer(&self, max: usize) -> bool {
        self.running < max && !self.waiting_for_slot
    }
}

impl Slots {
    pub(super) fn new(max: usize) -> Slots {
        Slots {
            max,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(dispatcher: &Arc<Dispatcher>, inner: &mut Inner) -> Slot {
        inner.running += 1;
        Slot {
            dispatcher: Arc::clone(dispatcher),
        }
    }

    /// `true` when the lane had no task and now has an entry (the caller starts one); else
    /// the running task is marked to look again.
    pub(super) fn mark_or_insert(&self, lane: &LaneKey) -> bool {
        let mut inner = self.lock();
        match inner.lanes.get_mut(lane) {
            Some(dirty) => {
                *dirty = true;
                false
            }
            None => {
                inner.lanes.insert(lane.clone(), true);
                true
            }
        }
    }

    /// A slot for an idle lane, when one is free and no conversation waits for one.
    pub(super) fn reserve(&self, dispatcher: &Arc<Dispatcher>, lane: &LaneKey) -> Option<Slot> {
        let mut inner = self.lock();
        if inner.lanes.contains_key(lane) || !inner.has_slot_for_newcomer(self.max) {
            return None;
        }
        inner.lanes.insert(lane.clone(), false);
        Some(Self::slot(dispatcher, &mut inner))
    }

    /// A slot for the lane when one is free and no conversation waits for one; else the lane
    /// is forgotten (its work stays in the store, as backlog the feeder will find).
    pub(super) fn take_or_leave(
        &self,
        dispatcher: &Arc<Dispatcher>,
        lane: &LaneKey,
    ) -> Option<Slot> {
        let mut inner = self.lock();
        if inner.has_slot_for_newcomer(self.max) {
            return Some(Self::slot(dispatcher, &mut inner));
        }
        inner.lanes.remove(lane);
        inner.backlog += 1;
        // This conversation now waits for a slot: the next free one is owed to it (or to one
        // found before it), not to a webhook that happens to come first.
        inner.waiting_for_slot = true;
        let free = inner.running < self.max;
        drop(inner);
        if free {
            dispatcher.feed.notify_one();
        }
        None
    }

    /// For the feeder: start `lane` if it has no task and a slot is free.
    pub(super) fn start_waiting(
        &self,
        dispatcher: &Arc<Dispatcher>,
        lane: &LaneKey,
    ) -> FromBacklog {
        let mut inner = self.lock();
        if let Some(dirty) = inner.lanes.get_mut(lane) {
            *dirty = true;
            return FromBacklog::Active;
        }
        if inner.running >= self.max {
            inner.waiting_for_slot = true;
            return FromBacklog::Full;
        }
        inner.lanes.insert(lane.clone(), false);
        FromBacklog::Started(Self::slot(dispatcher, &mut inner))
    }

    /// Work may wait in the store for a lane without a task.
    pub(super) fn add_backlog(&self) {
        self.lock().backlog += 1;
    }

    /// A conversation waits for a slot (`waiting_for_slot`): a lane that just ran a turn gives
    /// its slot back instead of taking its own next turn.
    pub(super) fn others_wait_for_slot(&self) -> bool {
        self.lock().waiting_for_slot
    }

    /// The feeder swept to the end of the store and started every conversation it found
    /// there: none waits for a slot any longer.
    pub(super) fn swept_to_end(&self) {
        self.lock().waiting_for_slot = false;
    }

    /// For the feeder: (backlog generation, pending, free slots, cursor).
    pub(super) fn feed_view(&self) -> (u64, bool, usize, Option<LaneKey>) {
        let inner = self.lock();
        (
            inner.backlog,
            inner.backlog != inner.fed,
            self.max.saturating_sub(inner.running),
            inner.cursor.clone(),
        )
    }

    pub(super) fn set_cursor(&self, cursor: Option<LaneKey>) {
        self.lock().cursor = cursor;
    }

    /// A full sweep of the store found nothing more to start: the backlog is served, unless
    /// more was added since the sweep began (`generation`).
    pub(super) fn served(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.backlog == generation {
            inner.fed = generation;
        }
    }

    /// `true` when the lane is idle and removed; `false` when new work arrived meanwhile.
    pub(super) fn idle_or_continue(&self, lane: &LaneKey) -> bool {
        let mut inner = self.lock();
        if inner.lanes.get(lane).copied().unwrap_or(false) {
            return false;
        }
        inner.lanes.remove(lane);
        true
    }

    /// Forget the lane; `true` when it was known.
    pub(super) fn remove(&self, lane: &LaneKey) -> bool {
        self.lock().lanes.remove(lane).is_some()
    }

    /// Set the lane's dirty flag; returns the previous value.
    pub(super) fn set_dirty(&self, lane: &LaneKey, dirty: bool) -> bool {
        self.lock()
            .lanes
            .get_mut(lane)
            .map(|d| std::mem::replace(d, dirty))
            .unwrap_or(false)
    }

    pub(super) fn is_dirty(&self, lane: &LaneKey) -> bool {
        self.lock().lanes.get(lane).copied().unwrap_or(false)
    }
}
