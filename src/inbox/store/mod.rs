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
mod files;
mod intake;
mod job;
mod lock;
mod memory;
mod operator;
mod ops;
mod opt_out;
mod outbox;
mod pace;
mod parts;
mod reactions;
mod reader;
mod schema;
mod states;
mod turns;
mod types;
mod wake_ups;
mod writer;

pub use lock::{DataDirLock, LockError, LOCK_FILE};

use crate::inbox::{LaneKey, Turn};
pub use conversation_view::{ConversationRow, MessageRow};
pub use conversations::{
    Holder, HumanConversation, KeywordHandoff, ASKED_FOR_PERSON, CLOSED_AT_HANDOFF, HELD_FOR_PERSON,
};
pub use opt_out::{OptChange, OptSource, OptedOut, OPTED_OUT_BY_KEYWORD, WHILE_OPTED_OUT};
pub use outbox::OutboxItem;
pub use reactions::{Reaction, REACTION_NOT_TO_AGENT, REACTION_REMOVED};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("the database would not accept writes: {0}")]
    NotWritable(String),
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
    #[error("a database read did not finish: {0}")]
    Task(String),
}

pub use operator::{
    DeadLetterRow, InboxSnapshot, OperatorDb, Requeue, TurnSummary, WaitingConversation,
};
pub use parts::{outbox_key, PartRef, CONFIRM_WINDOW};
pub use states::{MessageState, TurnState};
pub use turns::MAX_MESSAGES_PER_TURN;
pub use types::{
    Backlog, Batch, InboundState, NewInbound, RecordOutcome, ReplyPart, StatusUpdate, TurnOutcome,
};

/// Cheap to clone; all clones talk to the same writer thread.
#[derive(Clone)]
pub struct Store {
    tx: writer::Sender,
    reader: reader::Reader,
    path: PathBuf,
    identity: Arc<Identity>,
    /// The file the writer opened, to tell whether writes would still reach it.
    file: Arc<files::FileGuard>,
    /// Some reply part is (or was, since this open) held for the 24-hour window: only then
    /// does a turn look for held parts of its conversation (a read every turn would pay).
    held_parts: Arc<std::sync::atomic::AtomicBool>,
}

/// What this open of the database is.
struct Identity {
    /// Random, made when the database was created; part of every send's callback data.
    database: String,
    /// Unix milliseconds of this open: for a process, its (re)start.
    opened_at: i64,
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
    /// Open (creating if needed, see `files` for the modes) `<data_dir>/wagate.db` and start
    /// the writer thread.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        let path = files::prepare(data_dir, DATABASE_FILE)?;
        let (tx, database, file) = writer::spawn(&path, durability)?;
        let identity = Arc::new(Identity {
            database,
            opened_at: ops::now_millis(),
        });
        let reader = reader::Reader::open(&path)?;
        let held = reader.read_now(parts::any_held)?;
        Ok(Store {
            tx,
            reader,
            path,
            identity,
            file,
            held_parts: Arc::new(std::sync::atomic::AtomicBool::new(held)),
        })
    }

    /// `Ok` when a write would succeed now: a one-row probe write commits, the database file is
    /// still the one opened (not deleted or replaced), the connection is not read-only, and the
    /// file and its directory keep their write permission. For `/readyz`.
    pub async fn writable(&self) -> Result<(), StoreError> {
        // First, so a deleted file is reported as such rather than as the failed batch.
        self.file.check().map_err(StoreError::NotWritable)?;
        let read_only = self
            .call(|c| {
                let read_only = c.is_readonly(rusqlite::MAIN_DB)?;
                if !read_only {
                    files::probe_write(c)?;
                }
                Ok(read_only)
            })
            .await?;
        self.file
            .writable(read_only)
            .map_err(StoreError::NotWritable)
    }

    /// The database file (for messages that name it).
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
        // A huge body (Meta allows megabytes: tens of thousands of messages) is recorded in
        // bounded slices, each its own writer job, so no request holds the writer for long;
        // the caller still hears back only after the last slice is committed. The turns are
        // claimed with the last slice, so they see every message of the body.
        let mut slices = intake::slice(batch, intake::INTAKE_SLICE);
        let last = slices.pop().unwrap_or_default();
        let mut outcome = RecordOutcome::default();
        for slice in slices {
            let (recorded, _) = self.record_slice(slice, Vec::new()).await?;
            outcome.merge(recorded);
        }
        let (recorded, turns) = self.record_slice(last, lanes).await?;
        outcome.merge(recorded);
        Ok((outcome, turns))
    }

    async fn record_slice(
        &self,
        batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError> {
        let (reply, rx) = oneshot::channel();
        let database = self.identity.database.clone();
        self.tx
            .send(intake::RecordJob::boxed(batch, lanes, database, reply))
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

    /// Take the lane's next turn: an interrupted one first, else its oldest pending messages
    /// (at most [`MAX_MESSAGES_PER_TURN`]).
    pub async fn claim_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let claimed = self.call(move |c| turns::claim_turn(c, &lane)).await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    /// Take the lane's oldest pending messages (at most [`MAX_MESSAGES_PER_TURN`]) as a new
    /// turn, for a lane known to have no interrupted turn (its last turn was closed by the
    /// caller); saves looking for one.
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

    /// One page of the conversations with unanswered messages or an interrupted turn: those
    /// after `cursor` in key order, at most `limit`. Fewer than `limit`: the sweep reached the
    /// end (start again from `None`).
    pub async fn open_lanes_after(
        &self,
        cursor: Option<LaneKey>,
        limit: usize,
    ) -> Result<Vec<LaneKey>, StoreError> {
        self.reader
            .read(move |c| turns::open_lanes_after(c, cursor.as_ref(), limit))
            .await
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
        let messages = parts
            .into_iter()
            .map(crate::whatsapp::graph::OutgoingMessage::text)
            .collect();
        self.save_reply_messages(turn_id, messages).await
    }

    /// [`save_reply`](Self::save_reply) for a reply of any messages (what the agent's tools
    /// sent, then its text parts), in the order they go out.
    pub async fn save_reply_messages(
        &self,
        turn_id: i64,
        messages: Vec<crate::whatsapp::graph::OutgoingMessage>,
    ) -> Result<Vec<ReplyPart>, StoreError> {
        self.call(move |c| parts::save_messages(c, turn_id, &messages))
            .await
    }

    /// The earlier turns of `lane` whose parts are held for the 24-hour window, oldest first.
    pub async fn held_turns(&self, lane: LaneKey) -> Result<Vec<i64>, StoreError> {
        if !self.held_parts.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        self.reader.read(move |c| parts::held_turns(c, &lane)).await
    }

    /// The reply a turn saved before it was interrupted, if any.
    pub async fn load_reply(&self, turn_id: i64) -> Result<Option<Vec<ReplyPart>>, StoreError> {
        self.call(move |c| parts::load_reply(c, turn_id)).await
    }

    /// The callback data a send of this part carries (`biz_opaque_callback_data`).
    pub fn part_ref(&self, turn_id: i64, index: usize) -> PartRef {
        PartRef {
            database: self.identity.database.clone(),
            turn_id,
            index,
        }
    }

    /// Unix milliseconds of this open of the database (the process's start).
    pub fn opened_at_millis(&self) -> i64 {
        self.identity.opened_at
    }

    /// About to hand the part to Meta: committed before the Graph call, so a crash during it
    /// leaves the part `sending`. Returns the mark's time (unix milliseconds).
    pub async fn mark_part_sending(&self, turn_id: i64, index: usize) -> Result<i64, StoreError> {
        self.call(move |c| parts::mark_part_sending(c, turn_id, index))
            .await
    }

    /// Meta refused the part with an error answer: it does not have it.
    pub async fn clear_part_sending(&self, turn_id: i64, index: usize) -> Result<(), StoreError> {
        self.call(move |c| parts::clear_part_sending(c, turn_id, index))
            .await
    }

    /// Meta's id for the part once it is recorded as accepted (by the send's answer or by a
    /// status notification carrying the part's callback data).
    pub async fn part_outbound_id(
        &self,
        turn_id: i64,
        index: usize,
    ) -> Result<Option<String>, StoreError> {
        // Polled while a resumed turn waits: a read beside the writer, not a writer job.
        self.reader
            .read(move |c| parts::part_outbound_id(c, turn_id, index))
            .await
    }

    /// Meta accepted this part: committed before the next part goes out.
    pub async fn mark_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| parts::mark_part_sent(c, turn_id, index, &outbound_id))
            .await
    }

    pub async fn mark_part_failed(
        &self,
        turn_id: i64,
        index: usize,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| parts::mark_part_failed(c, turn_id, index, &error))
            .await
    }

    /// Conversation memory: store a turn's entries (idempotent per key, turn and position),
    /// through the writer like every other write.
    pub async fn append_memory(
        &self,
        key: String,
        turn_id: i64,
        entries: Vec<crate::memory::MemoryEntry>,
    ) -> Result<(), StoreError> {
        self.call(move |c| memory::append(c, &key, turn_id, &entries))
            .await
    }

    /// Conversation memory: the newest `limit` entries of `key` created at or after `since`
    /// (unix seconds), oldest first. Read beside the writer, never queued behind a commit.
    pub async fn memory_window(
        &self,
        key: String,
        limit: usize,
        since: i64,
    ) -> Result<Vec<crate::memory::MemoryEntry>, StoreError> {
        self.reader
            .read(move |c| memory::newest(c, &key, limit, since))
            .await
    }

    /// Conversation memory: delete every entry created before `before` (unix seconds), one
    /// bounded slice per writer batch so webhooks commit in between; returns how many went.
    pub async fn purge_memory(&self, before: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.call(move |c| memory::purge_batch(c, before)).await?;
            total += deleted;
            if deleted < memory::PURGE_BATCH {
                return Ok(total);
            }
        }
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
mod native_tests;
#[cfg(test)]
mod opt_out_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
