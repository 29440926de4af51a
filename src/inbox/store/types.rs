//! The store's vocabulary: what callers hand it and what it gives back.

use super::{MessageState, TurnState};
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use std::time::Duration;

/// A message as the webhook hands it to the store.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub message_id: String,
    pub lane: LaneKey,
    pub display_phone_number: String,
    pub contact_name: Option<String>,
    pub kind: String,
    pub timestamp: i64,
    /// The message object as JSON text, as stored.
    pub raw: String,
    /// The same object already parsed, when the caller has it (the webhook does): a turn
    /// started in the same commit takes it instead of parsing `raw` again.
    pub json: Option<serde_json::Value>,
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
    /// The state the message is recorded in.
    pub(super) fn stored(self) -> MessageState {
        match self {
            InboundState::Pending => MessageState::Pending,
            InboundState::Skipped => MessageState::Skipped,
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
    /// `biz_opaque_callback_data` echoed from the send: names our reply part when we sent it.
    pub callback_data: Option<String>,
}

/// Everything one webhook body carries, recorded in one go.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<NewInbound>,
    pub statuses: Vec<StatusUpdate>,
    /// (reason, JSON text) for what was not understood.
    pub dead_letters: Vec<(String, String)>,
    /// Customer messages that asked for a person (handoff): applied in the same commit as
    /// their message.
    pub handoffs: Vec<super::KeywordHandoff>,
    /// Opt-outs and resumes (keywords, Meta's `user_preferences`): applied in the same commit.
    pub opt_changes: Vec<super::OptChange>,
    /// A dead letter this body is the retry of: deleted in the same commit (a body still not
    /// understood leaves a new one with today's reason).
    pub replaces_dead_letter: Option<i64>,
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
    /// Conversations this commit opted out, with Meta's timestamp of the STOP.
    pub opted_out: Vec<(LaneKey, i64)>,
    /// Conversations this commit opted back in.
    pub resumed: Vec<LaneKey>,
    /// Dead letters recorded (what the body held that is not understood).
    pub new_dead_letters: usize,
}

impl RecordOutcome {
    /// Add a later slice's outcome of the same body.
    pub(super) fn merge(&mut self, later: RecordOutcome) {
        for lane in later.new_pending {
            if !self.new_pending.contains(&lane) {
                self.new_pending.push(lane);
            }
        }
        self.new_pending_messages += later.new_pending_messages;
        self.new_skipped += later.new_skipped;
        self.duplicates += later.duplicates;
        self.handed_over.extend(later.handed_over);
        for (lane, at) in later.opted_out {
            self.resumed.retain(|l| *l != lane);
            self.opted_out.retain(|(l, _)| *l != lane);
            self.opted_out.push((lane, at));
        }
        for lane in later.resumed {
            self.opted_out.retain(|(l, _)| *l != lane);
            self.resumed.retain(|l| *l != lane);
            self.resumed.push(lane);
        }
        self.new_dead_letters += later.new_dead_letters;
    }
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

impl TurnOutcome {
    /// What closing with this outcome records: the turn's state, its messages' state and the
    /// error kept. A turn to retry stays running, its messages taken.
    pub(super) fn states(&self) -> (TurnState, MessageState, Option<&str>) {
        match self {
            TurnOutcome::Done => (TurnState::Done, MessageState::Done, None),
            TurnOutcome::Failed(reason) => (
                TurnState::Failed,
                MessageState::Failed,
                Some(reason.as_str()),
            ),
            TurnOutcome::RetryLater { reason, .. } => (
                TurnState::Running,
                MessageState::Taken,
                Some(reason.as_str()),
            ),
        }
    }
}

/// One part of a saved reply (or of an outbox message).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyPart {
    pub index: usize,
    /// The text of a text part; for other messages, how they read in a text view.
    pub text: String,
    /// What is sent: the text, or buttons, a list, media, a location, a reaction, a template.
    pub message: OutgoingMessage,
    /// Unix ms when it was held for the 24-hour window (a template went out instead); it goes
    /// out when the customer writes again.
    pub held_since: Option<i64>,
    /// `Some` once Meta accepted it: never send it again.
    pub outbound_id: Option<String>,
    /// Unix milliseconds when it was handed to Meta, while its answer is not recorded: a crash
    /// (or a lost answer) left it `sending`, to be settled by its status notification.
    pub sending_since: Option<i64>,
}

/// Inbox depth, for /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub open_messages: u64,
    /// Unix milliseconds of the oldest message not yet answered.
    pub oldest_received_at: Option<i64>,
}
