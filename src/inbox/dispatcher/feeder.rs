//! The feeder: hands free turn slots to conversations whose work waits in the store.
//!
//! It sweeps the conversations with open messages in key order, one page at a time
//! ([`Store::open_lanes_after`](crate::inbox::Store::open_lanes_after)), starting a lane task
//! for each one without a task while slots are free, and remembers where it stopped: every
//! conversation gets its turn once per sweep, however many wait. Memory stays one page, not one
//! task per waiting conversation. It runs when a slot is freed while work waits, and at
//! `resume`.

use super::slots::FromBacklog;
use super::{Dispatcher, Start};
use crate::inbox::StoreError;
use std::sync::Arc;

/// Conversations per page: more than the slots, so a page of conversations that all have a
/// task already cannot hide the ones that need one.
fn page_size(dispatcher: &Dispatcher) -> usize {
    dispatcher.slots.max() * 2 + 16
}

/// The feeder task: feeds whenever woken, until the dispatcher stops or is dropped.
pub(super) fn spawn(dispatcher: &Arc<Dispatcher>) {
    let weak = Arc::downgrade(dispatcher);
    let woken = Arc::clone(&dispatcher.feed);
    tokio::spawn(async move {
        loop {
            woken.notified().await;
            let Some(dispatcher) = weak.upgrade() else {
                return;
            };
            if dispatcher.stopping.is_cancelled() {
                return;
            }
            if let Err(e) = feed(&dispatcher).await {
                tracing::error!(error = %e, "cannot read the inbox for waiting conversations; trying again in 1 s");
                tokio::time::sleep(crate::retry::FEEDER_AFTER_STORE_ERROR).await;
                dispatcher.feed.notify_one();
            }
        }
    });
}

/// Start lane tasks for waiting conversations while slots are free; returns how many started.
pub(super) async fn feed(dispatcher: &Arc<Dispatcher>) -> Result<usize, StoreError> {
    let page_size = page_size(dispatcher);
    let mut started = 0;
    loop {
        let (generation, pending, free, cursor) = dispatcher.slots.feed_view();
        if !pending || free == 0 || dispatcher.stopping.is_cancelled() {
            return Ok(started);
        }
        let page = dispatcher
            .store
            .open_lanes_after(cursor.clone(), page_size)
            .await?;
        let reached_end = page.len() < page_size;
        let mut last = cursor.clone();
        let mut left = page.len();
        for lane in page {
            left -= 1;
            match dispatcher.slots.start_waiting(dispatcher, &lane) {
                FromBacklog::Started(slot) => {
                    dispatcher.metrics.lanes_active.inc();
                    let start = Start {
                        turn: None,
                        slot: Some(slot),
                        maybe_interrupted: true,
                    };
                    dispatcher.spawn_lane(lane.clone(), start);
                    started += 1;
                }
                FromBacklog::Active => {}
                FromBacklog::Full => {
                    // This conversation comes first in the next page. Those left in the page
                    // wait for a slot (a lower bound: further pages are not counted).
                    dispatcher.slots.set_cursor(last);
                    dispatcher.metrics.lanes_waiting.set((left + 1) as i64);
                    return Ok(started);
                }
            }
            last = Some(lane);
        }
        if reached_end {
            dispatcher.slots.set_cursor(None);
            dispatcher.slots.swept_to_end();
            if cursor.is_none() {
                // A whole sweep from the start: every conversation with work has a task.
                dispatcher.slots.served(generation);
                dispatcher.metrics.lanes_waiting.set(0);
            }
        } else {
            dispatcher.slots.set_cursor(last);
        }
        tokio::task::yield_now().await;
    }
}
