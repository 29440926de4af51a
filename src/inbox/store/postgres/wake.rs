//! Wake-ups across replicas: hints that another process committed work for a conversation,
//! so the dispatcher's feeder looks at the store now instead of at its next poll. A hint only:
//! a lost one costs a poll interval, never a message (the work is in the store).
//!
//! On PostgreSQL a [`WakeUps`] LISTENs on [`WAKE_CHANNEL`] on a connection of its own (not
//! the pool's). The payload is [`wake_payload`]: the conversation, or empty for "look at
//! everything"; or [`state_payload`]: a conversation changed hands or opted out, which is not
//! work for the dispatcher but a signal for the handoff service (the store's
//! `conversation_changes`, also signalled whenever the connection is opened, since a change
//! may have gone unheard meanwhile). The sending side is `hint.rs` (a statement of its own, never inside an intake
//! transaction); when to hint, and the polling fallback, are the dispatcher's
//! (`inbox::dispatcher::wakeups`). On SQLite a
//! `WakeUps` never yields (one process owns the file).

use super::tls::Tls;
use super::url::DatabaseUrl;
use crate::inbox::store::StoreError;
use crate::inbox::LaneKey;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio_postgres::AsyncMessage;

/// The channel of the wake-up notifications.
pub const WAKE_CHANNEL: &str = "wagate_work";

/// The payload naming `lane` (`<phone_number_id> <user>`).
pub fn wake_payload(lane: &LaneKey) -> String {
    format!("{} {}", lane.phone_number_id, lane.user)
}

/// What starts the payload of a conversation's change of hands (take-over, release, opt-out,
/// resume). A replica of an earlier version reads it as a conversation with work: it only
/// sweeps the store.
const STATE_PREFIX: &str = "state ";

/// The payload saying `lane` changed hands or opted out or back in.
pub fn state_payload(lane: &LaneKey) -> String {
    format!("{STATE_PREFIX}{}", wake_payload(lane))
}

/// One hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeUp {
    /// This conversation has new work.
    Lane(LaneKey),
    /// Something changed: sweep the store.
    Any,
}

/// A stream of [`WakeUp`]s (see the module doc).
pub struct WakeUps {
    rx: Option<mpsc::Receiver<WakeUp>>,
    /// Kept so the LISTEN connection stays open as long as the stream.
    _client: Option<tokio_postgres::Client>,
}

impl WakeUps {
    /// A stream that never yields (SQLite).
    pub fn none() -> WakeUps {
        WakeUps {
            rx: None,
            _client: None,
        }
    }

    /// The next hint. `None` when the stream ended: the LISTEN connection was lost (ask the
    /// store for a new one after a pause; poll meanwhile). Never ends on SQLite: it waits
    /// forever.
    pub async fn next(&mut self) -> Option<WakeUp> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }
}

/// LISTEN on a connection of its own; conversation changes go to `changes`.
pub(crate) async fn listen(url: &DatabaseUrl, changes: Arc<Notify>) -> Result<WakeUps, StoreError> {
    let unreachable = |reason: String| StoreError::Unreachable {
        target: url.target(),
        reason,
    };
    let tls = Tls::for_url(url).map_err(&unreachable)?;
    let (client, mut connection) = url
        .config
        .connect(tls)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (tx, rx) = mpsc::channel(1024);
    let heard = Arc::clone(&changes);
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.payload().starts_with(STATE_PREFIX) {
                        heard.notify_one();
                        continue;
                    }
                    let hint = match n.payload().split_once(' ') {
                        Some((pnid, user)) if !pnid.is_empty() && !user.is_empty() => {
                            WakeUp::Lane(LaneKey {
                                phone_number_id: pnid.to_owned(),
                                user: user.to_owned(),
                            })
                        }
                        _ => WakeUp::Any,
                    };
                    // A full queue already holds plenty of reasons to look.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(hint) {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the wake-up connection to PostgreSQL was lost");
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    // Changes announced while nobody listened went unheard: the handoff service looks now.
    changes.notify_one();
    Ok(WakeUps {
        rx: Some(rx),
        _client: Some(client),
    })
}
