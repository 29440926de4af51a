//! The SQLite backend of [`Store`](super::Store): one writer thread with group commit (see
//! `writer`), a read connection beside it (`reader`), the file in `--data`. The methods here
//! are the SQLite half of the store's API (`api.rs` lists them); the other files of this folder
//! add theirs by concern.

use super::{
    files, intake, job, ledger, memory, parts, reader, turns, writer, Backlog, Batch, Durability,
    RecordOutcome, ReplyPart, StoreError, DATABASE_FILE,
};
use crate::inbox::{LaneKey, Turn, TurnOutcome};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Cheap to clone; all clones talk to the same writer thread.
#[derive(Clone)]
pub(super) struct Sqlite {
    pub(super) tx: writer::Sender,
    pub(super) reader: reader::Reader,
    pub(super) path: PathBuf,
    /// This database's id (`parts::PartRef`), for statuses recorded by the writer.
    pub(super) database: String,
    /// The file the writer opened, to tell whether writes would still reach it.
    pub(super) file: Arc<files::FileGuard>,
    /// Some reply part is (or was, since this open) held for the 24-hour window: only then
    /// does a turn look for held parts of its conversation (a read every turn would pay).
    pub(super) held_parts: Arc<std::sync::atomic::AtomicBool>,
}

impl Sqlite {
    /// Open (creating if needed, see `files` for the modes) `<data_dir>/wagate.db` and start
    /// the writer thread.
    pub(super) fn open(data_dir: &Path, durability: Durability) -> Result<Sqlite, StoreError> {
        let path = files::prepare(data_dir, DATABASE_FILE)?;
        let (tx, database, file) = writer::spawn(&path, durability)?;
        let reader = reader::Reader::open(&path)?;
        let held = reader.read_now(parts::any_held)?;
        Ok(Sqlite {
            tx,
            reader,
            path,
            database,
            file,
            held_parts: Arc::new(std::sync::atomic::AtomicBool::new(held)),
        })
    }

    /// `Ok` when a write would succeed now: a one-row probe write commits, the database file is
    /// still the one opened (not deleted or replaced), the connection is not read-only, and the
    /// file and its directory keep their write permission. For `/readyz`.
    pub(super) async fn writable(&self) -> Result<(), StoreError> {
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

    /// Run `op` in the writer's next batch; returns after the commit. `op` may run twice (see
    /// `writer`): it must only read what it captured.
    pub(super) async fn call<T: Send + 'static>(
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

    /// One slice of a webhook (see `Store::record_and_claim`): one writer job.
    pub(super) async fn record_slice(
        &self,
        batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError> {
        let (reply, rx) = oneshot::channel();
        let database = self.database.clone();
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

    pub(super) async fn claim_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let claimed = self.call(move |c| turns::claim_turn(c, &lane)).await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    pub(super) async fn claim_new_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError> {
        let claimed = self.call(move |c| turns::claim_pending(c, &lane)).await?;
        Ok(claimed.map(turns::ClaimedTurn::into_turn))
    }

    pub(super) async fn finish_turn(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
    ) -> Result<(), StoreError> {
        self.call(move |c| turns::finish_turn(c, turn_id, &outcome))
            .await
    }

    pub(super) async fn finish_and_claim(
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

    pub(super) async fn open_lanes_after(
        &self,
        cursor: Option<LaneKey>,
        limit: usize,
    ) -> Result<Vec<LaneKey>, StoreError> {
        self.reader
            .read(move |c| turns::open_lanes_after(c, cursor.as_ref(), limit))
            .await
    }

    pub(super) async fn open_lanes(&self) -> Result<Vec<LaneKey>, StoreError> {
        self.call(turns::open_lanes).await
    }

    pub(super) async fn save_reply_messages(
        &self,
        turn_id: i64,
        messages: Vec<crate::whatsapp::graph::OutgoingMessage>,
    ) -> Result<Vec<ReplyPart>, StoreError> {
        self.call(move |c| parts::save_messages(c, turn_id, &messages))
            .await
    }

    pub(super) async fn save_reply_marking_first(
        &self,
        turn_id: i64,
        messages: Vec<crate::whatsapp::graph::OutgoingMessage>,
    ) -> Result<(Vec<ReplyPart>, super::FirstPart), StoreError> {
        self.call(move |c| parts::save_messages_marking_first(c, turn_id, &messages))
            .await
    }

    pub(super) async fn held_turns(&self, lane: LaneKey) -> Result<Vec<i64>, StoreError> {
        if !self.held_parts.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        self.reader.read(move |c| parts::held_turns(c, &lane)).await
    }

    pub(super) async fn load_reply(
        &self,
        turn_id: i64,
    ) -> Result<Option<Vec<ReplyPart>>, StoreError> {
        self.call(move |c| parts::load_reply(c, turn_id)).await
    }

    /// One restart of the process is one open: a part left `sending` waits from here.
    pub(super) async fn confirm_window_start(&self, _key: i64) -> Option<i64> {
        None
    }

    pub(super) async fn mark_part_sending(
        &self,
        turn_id: i64,
        index: usize,
    ) -> Result<i64, StoreError> {
        self.call(move |c| parts::mark_part_sending(c, turn_id, index))
            .await?
            .map_err(|refusal| StoreError::SendRefused {
                key: turn_id,
                refusal,
            })
    }

    pub(super) async fn clear_part_sending(
        &self,
        turn_id: i64,
        index: usize,
    ) -> Result<(), StoreError> {
        self.call(move |c| parts::clear_part_sending(c, turn_id, index))
            .await
    }

    pub(super) async fn part_outbound_id(
        &self,
        turn_id: i64,
        index: usize,
    ) -> Result<Option<String>, StoreError> {
        // Polled while a resumed turn waits: a read beside the writer, not a writer job.
        self.reader
            .read(move |c| parts::part_outbound_id(c, turn_id, index))
            .await
    }

    pub(super) async fn mark_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| parts::mark_part_sent(c, turn_id, index, &outbound_id))
            .await
    }

    /// No statement to fold it into here: the writer batches commits anyway.
    pub(super) async fn mark_last_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError> {
        self.mark_part_sent(turn_id, index, outbound_id).await
    }

    pub(super) async fn mark_part_failed(
        &self,
        turn_id: i64,
        index: usize,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| parts::mark_part_failed(c, turn_id, index, &error))
            .await
    }

    pub(super) async fn append_memory(
        &self,
        key: String,
        turn_id: i64,
        entries: Vec<crate::memory::MemoryEntry>,
    ) -> Result<(), StoreError> {
        self.call(move |c| memory::append(c, &key, turn_id, &entries))
            .await
    }

    pub(super) async fn memory_window(
        &self,
        key: String,
        limit: usize,
        since: i64,
    ) -> Result<Vec<crate::memory::MemoryEntry>, StoreError> {
        self.reader
            .read(move |c| memory::newest(c, &key, limit, since))
            .await
    }

    pub(super) async fn purge_memory(&self, before: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.call(move |c| memory::purge_batch(c, before)).await?;
            total += deleted;
            if deleted < memory::PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    pub(super) async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.call(|c| {
            let (open_messages, oldest_received_at) = ledger::backlog(c)?;
            Ok(Backlog {
                open_messages,
                oldest_received_at,
            })
        })
        .await
    }

    /// Nothing to tell other processes: one process owns an SQLite database (`DataDirLock`).
    pub(super) async fn wake_ups(&self) -> Result<super::WakeUps, StoreError> {
        Ok(super::WakeUps::none())
    }

    /// One process owns the file: it answers every turn.
    pub(super) async fn holds_turn(&self, _turn_id: i64) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Nothing held beyond this process.
    pub(super) async fn release_leases(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
