//! Read receipt and typing indicator for the duration of a turn.
//!
//! Meta shows the indicator for up to 25 s or until the reply arrives, so it is refreshed every
//! 20 s while the agent works. Best effort: a failure is logged by the client and ignored.

use crate::inbox::Turn;
use crate::whatsapp::graph::GraphClient;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

const REFRESH_EVERY: Duration = Duration::from_secs(20);

/// Mark the turn's last message read with the typing indicator, and keep the indicator alive
/// until the returned guard is dropped.
pub(super) fn start(graph: &GraphClient, turn: &Turn) -> DropGuard {
    let stop = CancellationToken::new();
    let graph = graph.clone();
    let phone_number_id = turn.lane.phone_number_id.clone();
    let message_id = turn.last_message().message_id.clone();
    let token = stop.clone();
    tokio::spawn(async move {
        loop {
            let _ = graph.mark_read(&phone_number_id, &message_id, true).await;
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
            }
        }
    });
    stop.drop_guard()
}
