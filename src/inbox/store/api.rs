//! The store's API, listed once: each method of [`Store`] matches on the backend and calls the
//! method of the same name on the SQLite (`sqlite.rs` and the files by concern) or PostgreSQL
//! (`postgres/`) backend. Adding a method here means writing it for both; the compiler names
//! the one missing. Methods that are the same for both (built on these) are in `mod.rs`.

use super::{
    Backend, Backlog, Batch, ConversationRow, DeadLetterRow, FirstPart, Holder, HumanConversation,
    InboxSnapshot, MessageRow, OptedOut, OutboxItem, Reaction, RecordOutcome, ReplyPart, Requeue,
    Store, StoreError, TurnOutcome, WakeUps,
};
use crate::inbox::{LaneKey, Turn};
use crate::memory::MemoryEntry;
use crate::whatsapp::graph::OutgoingMessage;

/// `Store::name(args)` → `backend.name(args)` for each backend.
macro_rules! store_api {
    ($(
        $(#[$doc:meta])*
        $vis:vis async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl Store {
            $(
                $(#[$doc])*
                $vis async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Sqlite(db) => db.$name($($arg),*).await,
                        Backend::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

store_api! {
    /// `Ok` when a write would succeed now. SQLite: a one-row probe write commits, the
    /// database file is still the one opened (not deleted or replaced), the connection is not
    /// read-only, and the file and its directory keep their write permission. PostgreSQL: a
    /// probe write commits within the pool's timeouts. For `/readyz`.
    pub async fn writable(&self) -> Result<(), StoreError>;

    /// One slice of a webhook, in one commit (see [`Store::record_and_claim`]).
    pub(super) async fn record_slice(
        &self,
        batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError>;

    /// Take the lane's next turn: an interrupted one first, else its oldest pending messages
    /// (at most [`MAX_MESSAGES_PER_TURN`](super::MAX_MESSAGES_PER_TURN)). `None` also when
    /// (PostgreSQL) another replica holds the conversation now.
    pub async fn claim_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError>;

    /// Take the lane's oldest pending messages as a new turn, for a lane known to have no
    /// interrupted turn (its last turn was closed by the caller); saves looking for one.
    pub async fn claim_new_turn(&self, lane: LaneKey) -> Result<Option<Turn>, StoreError>;

    /// Record how a turn ended. [`StoreError::LeaseLost`] when another replica took the
    /// conversation over meanwhile (nothing is recorded then).
    pub async fn finish_turn(&self, turn_id: i64, outcome: TurnOutcome) -> Result<(), StoreError>;

    /// Record how the lane's turn ended and take the lane's next pending messages as a new
    /// turn, in one commit. A turn to retry (`RetryLater`) stays the lane's turn: nothing is
    /// claimed.
    pub async fn finish_and_claim(
        &self,
        turn_id: i64,
        outcome: TurnOutcome,
        lane: LaneKey,
    ) -> Result<Option<Turn>, StoreError>;

    /// One page of the conversations with unanswered messages or an interrupted turn (that
    /// no other live replica holds): those after `cursor` in key order, at most `limit`.
    /// Fewer than `limit`: the sweep reached the end (start again from `None`).
    pub async fn open_lanes_after(
        &self,
        cursor: Option<LaneKey>,
        limit: usize,
    ) -> Result<Vec<LaneKey>, StoreError>;

    /// Conversations with unanswered messages or an interrupted turn, oldest first.
    pub async fn open_lanes(&self) -> Result<Vec<LaneKey>, StoreError>;

    /// [`save_reply`](Store::save_reply) for a reply of any messages (what the agent's tools
    /// sent, then its text parts), in the order they go out.
    pub async fn save_reply_messages(
        &self,
        turn_id: i64,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<ReplyPart>, StoreError>;

    /// [`save_reply_messages`](Store::save_reply_messages) with the first part marked
    /// `sending` in the same commit, as [`mark_part_sending`](Store::mark_part_sending) would
    /// (and refused alike): for a turn about to send its new reply at once, one commit less
    /// (PostgreSQL: one statement less per message). The caller checked the 24-hour window.
    pub async fn save_reply_marking_first(
        &self,
        turn_id: i64,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(Vec<ReplyPart>, FirstPart), StoreError>;

    /// The earlier turns of `lane` whose parts are held for the 24-hour window, oldest first.
    pub async fn held_turns(&self, lane: LaneKey) -> Result<Vec<i64>, StoreError>;

    /// The reply a turn saved before it was interrupted, if any.
    pub async fn load_reply(&self, turn_id: i64) -> Result<Option<Vec<ReplyPart>>, StoreError>;

    /// About to hand the part to Meta: committed before the Graph call, so a crash during it
    /// leaves the part `sending`. Returns the mark's time (unix milliseconds).
    /// [`StoreError::SendRefused`] (nothing written; the part must not go out) when, as of
    /// this commit, a turn's conversation is with a person (not by the turn's own
    /// `handoff_to_human`) or opted out, or an outbox message is no longer pending or
    /// (PostgreSQL) no longer claimed by this replica; an outbox mark renews the claim.
    pub async fn mark_part_sending(&self, turn_id: i64, index: usize) -> Result<i64, StoreError>;

    /// Meta refused the part with an error answer: it does not have it.
    pub async fn clear_part_sending(&self, turn_id: i64, index: usize) -> Result<(), StoreError>;

    /// Meta's id for the part once it is recorded as accepted (by the send's answer or by a
    /// status notification carrying the part's callback data).
    pub async fn part_outbound_id(
        &self,
        turn_id: i64,
        index: usize,
    ) -> Result<Option<String>, StoreError>;

    /// Meta accepted this part: committed before the next part goes out.
    pub async fn mark_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError>;

    /// Meta accepted the reply's last part: as [`mark_part_sent`](Store::mark_part_sent), but
    /// a turn's mark may wait for the turn's close, the next write of the turn, which then
    /// writes it (PostgreSQL: one statement less per message; SQLite writes it at once).
    pub async fn mark_last_part_sent(
        &self,
        turn_id: i64,
        index: usize,
        outbound_id: String,
    ) -> Result<(), StoreError>;

    pub async fn mark_part_failed(
        &self,
        turn_id: i64,
        index: usize,
        error: String,
    ) -> Result<(), StoreError>;

    /// Conversation memory: store a turn's entries (idempotent per key, turn and position).
    pub async fn append_memory(
        &self,
        key: String,
        turn_id: i64,
        entries: Vec<MemoryEntry>,
    ) -> Result<(), StoreError>;

    /// Conversation memory: the newest `limit` entries of `key` created at or after `since`
    /// (unix seconds), oldest first. Never queued behind a commit.
    pub async fn memory_window(
        &self,
        key: String,
        limit: usize,
        since: i64,
    ) -> Result<Vec<MemoryEntry>, StoreError>;

    /// Conversation memory: delete every entry created before `before` (unix seconds), in
    /// bounded slices so webhooks commit in between; returns how many went.
    pub async fn purge_memory(&self, before: i64) -> Result<usize, StoreError>;

    /// Whether this process still answers the turn's conversation: always on SQLite; on
    /// PostgreSQL while it holds the lease it claimed the turn with. For sends that are not
    /// saved parts (the `error_reply`), checked just before them.
    pub async fn holds_turn(&self, turn_id: i64) -> Result<bool, StoreError>;

    /// Inbox depth, for /metrics.
    pub async fn backlog(&self) -> Result<Backlog, StoreError>;

    /// Hints that other processes committed work (PostgreSQL: `LISTEN`), for the dispatcher's
    /// feeder; SQLite: none ever come (one process owns the file).
    pub async fn wake_ups(&self) -> Result<WakeUps, StoreError>;

    /// Give up this process's conversation leases (at shutdown, after the running turns
    /// stopped), so other replicas take them over at once instead of after the lease expiry.
    pub async fn release_leases(&self) -> Result<(), StoreError>;

    /// The customer's messages to the person (never seen by the agent), received in
    /// (after, until] (unix ms), for the conversation memory.
    pub async fn held_messages(
        &self,
        lane: LaneKey,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError>;

    pub async fn conversations(&self, only_human: bool)
        -> Result<Vec<ConversationRow>, StoreError>;

    /// `None` when the conversation is unknown.
    pub async fn conversation_messages(
        &self,
        lane: LaneKey,
    ) -> Result<Option<Vec<MessageRow>>, StoreError>;

    /// When the customer last wrote (unix ms), as the 24-hour window counts it.
    pub async fn last_customer_at(&self, lane: LaneKey) -> Result<Option<i64>, StoreError>;

    /// Meta's timestamp of the customer's newest message (unix seconds).
    pub async fn last_customer_timestamp(&self, lane: LaneKey) -> Result<Option<i64>, StoreError>;

    /// Who answers `lane` now.
    pub async fn holder(&self, lane: LaneKey) -> Result<Holder, StoreError>;

    /// Hand `lane` to a person (`trigger`: operator, keyword, tool). Its messages still
    /// waiting for the agent are closed; `notice` (formatted parts), when given, is queued for
    /// the customer in the same commit. `false` (and nothing queued) when a person already
    /// had it.
    pub async fn hand_over(
        &self,
        lane: LaneKey,
        trigger: &'static str,
        reason: Option<String>,
        notice: Vec<String>,
    ) -> Result<bool, StoreError>;

    /// Back to the agent; `false` when it already was.
    pub async fn release(&self, lane: LaneKey, trigger: &'static str) -> Result<bool, StoreError>;

    /// Every conversation a person has, longest first.
    pub async fn human_conversations(&self) -> Result<Vec<HumanConversation>, StoreError>;

    /// The inbox at one moment, as `wagate inbox` shows it.
    pub async fn inbox_snapshot(&self, limit: usize, all: bool)
        -> Result<InboxSnapshot, StoreError>;

    /// Put a failed turn's messages back in the inbox (`wagate retry`).
    pub async fn requeue_turn(&self, turn_id: i64, force: bool) -> Result<Requeue, StoreError>;

    /// Dead letter `id` with its body; `None` when there is none (never was, or retried).
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError>;

    /// Every opted-out conversation.
    pub async fn opted_out_conversations(&self) -> Result<Vec<OptedOut>, StoreError>;

    /// Whether the customer of `lane` is opted out now.
    pub async fn is_opted_out(&self, lane: LaneKey) -> Result<bool, StoreError>;

    /// Queue an operator's reply (formatted `parts`) and note the reply on the conversation,
    /// which restarts its `release_after_seconds`. Returns the message id; `None` (nothing
    /// queued) when the customer has opted out.
    pub async fn queue_operator_reply(
        &self,
        lane: LaneKey,
        text: String,
        parts: Vec<String>,
    ) -> Result<Option<i64>, StoreError>;

    /// Outbox messages not yet fully sent, oldest first (at most 100).
    pub async fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StoreError>;

    /// Hold the parts of `key` (a turn, or [`outbox_key`](super::outbox_key) of a message)
    /// from `from` on for the 24-hour window and, in the same commit, queue `template` (when
    /// given) to reopen it, once per customer message `reopens` (unix ms). Returns the
    /// template's outbox id when it was queued now.
    pub async fn hold_for_window(
        &self,
        lane: LaneKey,
        key: i64,
        from: usize,
        template: Option<OutgoingMessage>,
        reopens: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Close an outbox message: `error` None when every part went out.
    pub async fn finish_outbox(
        &self,
        id: i64,
        failed_part: Option<usize>,
        error: Option<String>,
    ) -> Result<(), StoreError>;

    /// The text of the message we sent as `wamid`, for quoting it to the agent; `None` when
    /// it is not one of ours.
    pub async fn sent_message_text(&self, wamid: String) -> Result<Option<String>, StoreError>;

    /// The customer's current reactions in `lane` (removed ones left out), oldest first.
    pub async fn reactions(&self, lane: LaneKey) -> Result<Vec<Reaction>, StoreError>;
}
