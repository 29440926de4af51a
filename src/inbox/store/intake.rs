//! Recording a webhook's content in one job: messages (deduplicated), statuses, dead letters,
//! and, for conversations the dispatcher reserved, the turn that answers the new messages. A
//! webhook for an idle conversation thus costs one trip to the writer instead of two, and its
//! turn starts from the messages in memory instead of reading them back.

use super::job::Job;
use super::turns::{self, parse_raw, MAX_MESSAGES_PER_TURN};
use super::{ledger, now_millis};
use super::{Batch, InboundState, MessageState, NewInbound, RecordOutcome, StoreError};
use crate::inbox::{InboundRecord, LaneKey, Turn};
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

/// What the writer did with a batch.
pub(super) struct Recorded {
    pub(super) outcome: RecordOutcome,
    pub(super) turns: Vec<Opened>,
}

/// A turn opened while recording.
pub(super) struct Opened {
    id: i64,
    lane: LaneKey,
    /// Messages of the lane that were already pending (a concurrent webhook's), from the inbox.
    earlier: Vec<(InboundRecord, String)>,
    /// The batch's new messages: (index in `Batch::messages`, seq).
    new: Vec<(usize, i64)>,
}

impl Opened {
    /// The turn, built from the batch the job gave back: no copy of the messages, and no
    /// parse of their JSON when the batch carries it.
    pub(super) fn into_turn(self, batch: &mut Batch) -> Turn {
        let mut messages: Vec<InboundRecord> = self
            .earlier
            .into_iter()
            .map(|(mut record, raw)| {
                record.raw = parse_raw(&raw);
                record
            })
            .collect();
        for (index, seq) in self.new {
            let m = &mut batch.messages[index];
            let raw = m.json.take().unwrap_or_else(|| parse_raw(&m.raw));
            messages.push(take_record(m, seq, raw));
        }
        Turn {
            id: self.id,
            lane: self.lane,
            messages,
            attempt: 0,
        }
    }
}

fn take_record(m: &mut NewInbound, seq: i64, raw: serde_json::Value) -> InboundRecord {
    InboundRecord {
        seq,
        message_id: std::mem::take(&mut m.message_id),
        phone_number_id: m.lane.phone_number_id.clone(),
        display_phone_number: std::mem::take(&mut m.display_phone_number),
        user: m.lane.user.clone(),
        contact_name: m.contact_name.take(),
        kind: std::mem::take(&mut m.kind),
        timestamp: m.timestamp,
        raw,
    }
}

/// The job; it hands the batch back with the result, so the caller builds turns from it and
/// frees it on its own thread, not the writer's.
pub(super) struct RecordJob {
    batch: Batch,
    claim: Vec<LaneKey>,
    /// This database's id, to match status callback data to our parts.
    database: String,
    result: Option<rusqlite::Result<Recorded>>,
    reply: oneshot::Sender<(Result<Recorded, StoreError>, Batch)>,
}

impl RecordJob {
    /// The job, boxed for the writer's queue.
    pub(super) fn boxed(
        batch: Batch,
        claim: Vec<LaneKey>,
        database: String,
        reply: oneshot::Sender<(Result<Recorded, StoreError>, Batch)>,
    ) -> Box<dyn Job> {
        Box::new(RecordJob {
            batch,
            claim,
            database,
            result: None,
            reply,
        })
    }
}

impl Job for RecordJob {
    fn run(&mut self, conn: &Connection) -> bool {
        let result = record(conn, &mut self.batch, &self.claim, &self.database);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn deliver(self: Box<Self>, batch_error: Option<&str>) {
        let result = match (batch_error, self.result) {
            (Some(e), _) => Err(StoreError::Commit(e.to_string())),
            (None, Some(result)) => result.map_err(StoreError::from),
            (None, None) => Err(StoreError::Commit("the operation did not run".into())),
        };
        // The caller may have gone away (request cancelled); nothing to do then.
        let _ = self.reply.send((result, self.batch));
    }
}

fn record(
    conn: &Connection,
    batch: &mut Batch,
    claim: &[LaneKey],
    database: &str,
) -> rusqlite::Result<Recorded> {
    // Opt-out first: an opted-out customer's message gets no turn and asks for no person.
    let (opted_out, resumed) = super::opt_out::apply(conn, batch)?;
    // Handoff: conversations a person has get no turn (their messages are kept, skipped).
    let handed_over = super::conversations::hold_for_people(conn, batch)?;
    // Reactions: which of our messages, which emoji; answered only when the agent wants them.
    super::reactions::record(conn, batch)?;
    let (mut outcome, turns) = record_messages(conn, &batch.messages, claim)?;
    outcome.handed_over = handed_over;
    outcome.opted_out = opted_out;
    outcome.resumed = resumed;
    ledger::record_statuses(conn, database, &batch.statuses)?;
    if let Some(id) = batch.replaces_dead_letter {
        ledger::delete_dead_letter(conn, id)?;
    }
    for (reason, body) in &batch.dead_letters {
        ledger::record_dead_letter(conn, reason, body)?;
    }
    outcome.new_dead_letters = batch.dead_letters.len();
    Ok(Recorded { outcome, turns })
}

/// Insert-or-ignore on the message id: a redelivery, in this body, a later one or a concurrent
/// one, changes nothing and is reported as a duplicate.
///
/// For each lane of `claim`, the new messages to answer go straight into a new running turn
/// (state `taken`), after any message of the lane still pending, so arrival order holds. A lane
/// with an interrupted turn is left alone: its own claim resumes that turn first.
fn record_messages(
    conn: &Connection,
    messages: &[NewInbound],
    claim: &[LaneKey],
) -> rusqlite::Result<(RecordOutcome, Vec<Opened>)> {
    let mut opened = Vec::with_capacity(claim.len());
    for lane in claim {
        if turns::interrupted_turn(conn, lane)?.is_some() {
            continue;
        }
        let earlier = turns::pending_messages(conn, lane, MAX_MESSAGES_PER_TURN)?;
        let id = turns::insert_turn(conn, lane)?;
        turns::take(conn, id, &earlier)?;
        opened.push(Opened {
            id,
            lane: lane.clone(),
            earlier,
            new: Vec::new(),
        });
    }

    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO inbound (message_id, phone_number_id, display_phone_number, user,
             contact_name, kind, timestamp, received_at, state, turn_id, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut raw = conn.prepare_cached("INSERT INTO inbound_raw (seq, raw) VALUES (?1, ?2)")?;
    let received_at = now_millis();
    let mut outcome = RecordOutcome::default();
    for (index, m) in messages.iter().enumerate() {
        // A turn takes new messages up to the cap; the rest wait for the lane's next turn.
        let mut turn = match m.state {
            InboundState::Pending => opened.iter_mut().find(|t| {
                t.lane == m.lane && t.earlier.len() + t.new.len() < MAX_MESSAGES_PER_TURN
            }),
            InboundState::Skipped => None,
        };
        let (state, turn_id) = match &turn {
            Some(t) => (MessageState::Taken, Some(t.id)),
            None => (m.state.stored(), None),
        };
        let inserted = insert.execute(params![
            m.message_id,
            m.lane.phone_number_id,
            m.display_phone_number,
            m.lane.user,
            m.contact_name,
            m.kind,
            m.timestamp,
            received_at,
            state.as_str(),
            turn_id,
            m.note,
        ])?;
        if inserted == 0 {
            outcome.duplicates += 1;
            continue;
        }
        let seq = conn.last_insert_rowid();
        raw.execute(params![seq, m.raw])?;
        match (m.state, turn.as_mut()) {
            (InboundState::Pending, Some(t)) => {
                outcome.new_pending_messages += 1;
                t.new.push((index, seq));
            }
            (InboundState::Pending, None) => {
                outcome.new_pending_messages += 1;
                if !outcome.new_pending.contains(&m.lane) {
                    outcome.new_pending.push(m.lane.clone());
                }
            }
            (InboundState::Skipped, _) => outcome.new_skipped += 1,
        }
    }

    // Nothing to answer after all (every message was a redelivery): no turn.
    let mut drop_turn = conn.prepare_cached("DELETE FROM turns WHERE id = ?1")?;
    for t in opened
        .iter()
        .filter(|t| t.earlier.is_empty() && t.new.is_empty())
    {
        drop_turn.execute(params![t.id])?;
    }
    opened.retain(|t| !(t.earlier.is_empty() && t.new.is_empty()));
    Ok((outcome, opened))
}

/// Messages per writer job when a body is recorded in slices: a few milliseconds of the
/// writer's time each.
pub(super) const INTAKE_SLICE: usize = 500;

/// `batch` cut into slices of at most `size` messages (at least one slice); the statuses and
/// dead letters go with the first, each keyword handoff with its message.
pub(super) fn slice(mut batch: Batch, size: usize) -> Vec<Batch> {
    if batch.messages.len() <= size {
        return vec![batch];
    }
    let mut slices: Vec<Batch> = Vec::new();
    let mut messages = std::mem::take(&mut batch.messages).into_iter();
    let handoffs = std::mem::take(&mut batch.handoffs);
    let opt_changes = std::mem::take(&mut batch.opt_changes);
    let mut first = Some(batch);
    loop {
        let chunk: Vec<NewInbound> = messages.by_ref().take(size).collect();
        if chunk.is_empty() {
            break;
        }
        let mut slice = first.take().unwrap_or_default();
        slice.messages = chunk;
        slices.push(slice);
    }
    // A keyword handoff goes with the slice that holds its message: it is applied (and checked
    // for redelivery) in the same commit as that message.
    for handoff in handoffs {
        let home = slices
            .iter()
            .position(|s| {
                s.messages
                    .iter()
                    .any(|m| m.message_id == handoff.message_id)
            })
            .unwrap_or(0);
        slices[home].handoffs.push(handoff);
    }
    // Likewise an opt-out or resume keyword; a notification (no message) with the first.
    for change in opt_changes {
        let home = change.message_id.as_deref().and_then(|id| {
            slices
                .iter()
                .position(|s| s.messages.iter().any(|m| m.message_id == id))
        });
        slices[home.unwrap_or(0)].opt_changes.push(change);
    }
    slices
}
