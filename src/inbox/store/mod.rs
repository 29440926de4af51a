//! The inbox store: every acknowledged message, turn, reply part and delivery status, in SQLite.
//!
//! One writer thread owns the write connection. Callers send it commands; it takes every command
//! waiting at that moment, runs them in ONE transaction and commits once (group commit), then
//! answers each. So a burst of concurrent webhooks costs one fsync, not one each, and no SQLite
//! call ever blocks the async runtime.
//!
//! The API speaks the domain (record, claim a turn, finish it, save a reply), never SQL, so a
//! Postgres implementation for several replicas could sit behind the same type later.

mod checkpoint;
mod conversation_view;
mod conversations;
mod intake;
mod job;
mod ops;
mod outbox;
mod pace;
mod schema;
mod turns;
mod writer;

use crate::inbox::{LaneKey, Turn};
pub use conversation_view::{ConversationRow, MessageRow};
pub use conversations::{
    Holder, HumanConversation, KeywordHandoff, ASKED_FOR_PERSON, CLOSED_AT_HANDOFF, HELD_FOR_PERSON,
};
pub use outbox::OutboxItem;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;

/// File name of the database inside `--data`.
pub const DATABASE_FILE: &str = "wagate.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database commit failed: {0}")]
    Commit(String),
    #[error("cannot start the database writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the database writer has stopped")]
    WriterGone,
}

/// A message as the webhook hands it to the store.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub message_id: String,
    pub lane: LaneKey,
    pub display_phone_number: String,
    pub contact_name: Option<String>,
    pub kind: String,
    pub timestamp: i64,
    /// The message object as JSON text.
    pub raw: String,
    /// `Pending` to be answered; `Skipped` to keep it on record without a reply (reactions,
    /// numbers no agent serves).
    pub state: InboundState,
    /// Why it was skipped, for `wagate inbox`.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    Pending,
    Skipped,
}

impl InboundState {
    fn as_str(self) -> &'static str {
        match self {
            InboundState::Pending => "pending",
            InboundState::Skipped => "skipped",
        }
    }
}

/// A delivery status for one of our outbound messages.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub message_id: String,
    pub recipient: Option<String>,
    pub status: String,
    /// unknown 0 < sent 1 < delivered 2 < read 3 < played 4 < failed/deleted 5 (terminal).
    pub rank: i64,
    /// JSON text of `errors`, when any.
    pub errors: Option<String>,
    pub pricing: Option<String>,
}

/// Everything one webhook body carries, recorded in one go.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<NewInbound>,
    pub statuses: Vec<StatusUpdate>,
    /// (reason, JSON text) for what was not understood.
    pub dead_letters: Vec<(String, String)>,
    /// The messages' JSON already parsed, in the order of `messages`, when the caller has it
    /// (the webhook does): a turn started in the same commit takes it instead of parsing `raw`
    /// again. May be empty.
    pub message_json: Vec<serde_json::Value>,
    /// Customer messages that asked for a person (handoff): applied in the same commit.
    pub handoffs: Vec<KeywordHandoff>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    /// Lanes that received new messages to answer and whose turn was not started in the same
    /// commit: the dispatcher must be told (each once, in first-seen order).
    pub new_pending: Vec<LaneKey>,
    /// How many messages are newly waiting for an answer (claimed in the commit or not).
    pub new_pending_messages: usize,
    pub new_skipped: usize,
    pub duplicates: usize,
    /// Conversations this commit handed to a person (a handoff keyword).
    pub handed_over: Vec<LaneKey>,
}

/// How a turn ended, as the dispatcher records it.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnOutcome {
    /// Answered (or deliberately not answered); its messages are done.
    Done,
    /// Will not be answered without an operator (`wagate retry`); the reason is kept.
    Failed(String),
    /// Try the same turn again after a while (the Graph API is down, say).
    RetryLater { after: Duration, reason: String },
}

/// One part of a saved reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPart {
    pub index: usize,
    pub text: String,
    /// `Some` once Meta accepted it: never send it again.
    pub outbound_id: Option<String>,
}

/// Inbox depth, for /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub open_messages: u64,
    /// Unix milliseconds of the oldest message not yet answered.
    pub oldest_received_at: Option<i64>,
}

/// Cheap to clone; all clones talk to the same writer thread.
#[derive(Clone)]
pub struct Store {
    tx: writer::Sender,
    path: PathBuf,
}

/// How hard each commit tries to reach the disk. `Full` (the default) survives power loss:
/// every commit is fsynced before anyone is told "done". `Normal` is an explicit opt-in for
/// disks where an fsync is slow: it survives a process crash (kill -9) but may lose the last
/// commits (already acknowledged to Meta) on power loss or an OS crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl Store {
    /// Open (creating if needed) `<data_dir>/wagate.db` and start the writer thread.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let tx = writer::spawn(&path, durability)?;
        Ok(Store { tx, path })
    }

    /// The database file, for other components that keep their tables in it (memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `op` in the writer's next batch; returns after the commit. `op` may run twice (see
    /// `writer`): it must only read what it captured.
    async fn call<T: Send + 'static>(
        &self,
        op: impl FnMut(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        // An unbounded std channel: `send` never blocks, so it is fine on the async runtime.
        self.tx
            .send(job::job(op, reply))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Record a webhook's content durably. Returns after the commit.
    pub async fn record(&self, batch: Batch) -> Result<RecordOutcome, StoreError> {
        self.record_and_claim(batch, Vec::new())
            .await
            .map(|(outcome, _)| outcome)
    }

    /// Record a webhook's content and, in the same commit, start a turn for each of `lanes`
    /// (idle conversations the dispatcher reserved) with its new messages to answer. Returns
    /// after the commit, with those turns; a lane gets none when nothing new arrived for it or
    /// when it has an interrupted turn (which its own claim resumes first).
    pub async fn record_and_claim(
        &self,
        batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(intake::RecordJob::boxed(batch, lanes, reply))
            .map_err(|_| StoreError::WriterGone)?;
        let (result, mut batch) = rx.await.map_err(|_| StoreError::WriterGone)?;
        let recorded = result?;
        let turns = recorded
            .turns
            .into_iter()
            .map(|opened| opened.into_turn(&mut batch))
            .collect();
        Ok((recorded.outcome, turns))
    }

    /// Take the lane's next turn: an interrupted one first, else all its pending messages.
    pub async fn claim_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let claimed = self.call(move |c| turns::claim_turn(c, &lane)).await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    /// Take all the lane's pending messages as a new turn, for a lane known to have no
    /// interrupted turn (its last turn was closed by the caller); saves looking for one.
    pub async fn claim_new_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let claimed = self.call(move |c| turns::claim_pending(c, &lane)).await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    /// Record how a turn ended.
    pub async fn finish_turn(&self, turn_id: i64, outcome: TurnOutcome) -> Result<(), StoreError> {
        self.call(move |c| turns::finish_turn(c, turn_id, &outcome))
            .await
    }

    /// Record how the lane's turn ended and take the lane's next pending messages as a new turn,
    /// in one commit. A turn to retry (`RetryLater`) stays the lane's turn: nothing is claimed.
    pub async fn finish_and_claim(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
        lane: LaneKey,
    ) -> Result<Option<Turn>, StoreError> {
        let claimed = self
            .call(move |c| turns::finish_and_claim(c, turn_id, &outcome, &lane))
            .await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    /// Conversations with unanswered messages or an interrupted turn, oldest first.
    pub async fn open_lanes(&self) -> Result<Vec<LaneKey>, StoreError> {
        self.call(turns::open_lanes).await
    }

    /// Save a turn's reply parts before sending them; returns the saved parts (the earlier
    /// version when the turn had already saved one).
    pub async fn save_reply(
        &self,
        turn_id: i64,
        parts: Vec<String>,
    ) -> Result<Vec<ReplyPart>, StoreError> {
        self.call(move |c| ops::save_reply(c, turn_id, &parts))
            .await
    }

    /// The reply a turn saved before it was interrupted, if any.
    pub async fn load_reply(&self, turn_id: i64) -> Result<Option<Vec<ReplyPart>>, StoreError> {
        self.call(move |c| ops::load_reply(c, turn_id)).await
    }

    /// Meta accepted this part: committed before the next part goes out.
    pub async fn mark_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| ops::mark_part_sent(c, turn_id, index, &outbound_id))
            .await
    }

    pub async fn mark_part_failed(
        &self,
        turn_id: i64,
        index: usize,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| ops::mark_part_failed(c, turn_id, index, &error))
            .await
    }

    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.call(|c| {
            let (open_messages, oldest_received_at) = ops::backlog(c)?;
            Ok(Backlog {
                open_messages,
                oldest_received_at,
            })
        })
        .await
    }
}

#[cfg(test)]
mod intake_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
