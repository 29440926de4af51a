//! TEMPORARY: the store methods not yet written for PostgreSQL (branch `pg2` writes them one
//! by one and deletes this file; none may remain at merge). Each answers
//! [`StoreError::NotYetOnPostgres`] naming itself, so the branch compiles and a missing one is
//! loud, never silently empty.

use super::PgStore;
use crate::inbox::store::{
    Batch, ConversationRow, DeadLetterRow, Holder, InboxSnapshot, MessageRow, OutboxItem, Reaction,
    Requeue, StoreError,
};
use crate::inbox::LaneKey;
use crate::whatsapp::graph::OutgoingMessage;
use deadpool_postgres::Transaction;

fn not_yet<T>(method: &'static str) -> Result<T, StoreError> {
    Err(StoreError::NotYetOnPostgres(method))
}

/// What the intake steps other than the messages' own changed (see `store/intake.rs`).
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) handed_over: Vec<LaneKey>,
    pub(crate) opted_out: Vec<(LaneKey, i64)>,
    pub(crate) resumed: Vec<LaneKey>,
}

/// Keyword handoffs, opt-out changes and reactions at intake: refused (the webhook answers
/// 503 and Meta redelivers) until written, so none is lost by being skipped.
pub(crate) async fn intake_hooks(
    _tx: &Transaction<'_>,
    batch: &mut Batch,
) -> Result<Hooks, StoreError> {
    if !batch.handoffs.is_empty() {
        return not_yet("keyword handoff at intake");
    }
    if !batch.opt_changes.is_empty() {
        return not_yet("opt-out and resume at intake");
    }
    if batch.messages.iter().any(|m| m.kind == "reaction") {
        return not_yet("reactions at intake");
    }
    Ok(Hooks::default())
}

#[allow(unused_variables)]
impl PgStore {
    pub(crate) async fn held_messages(
        &self,
        lane: LaneKey,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        not_yet("held_messages")
    }

    pub(crate) async fn conversations(
        &self,
        only_human: bool,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        not_yet("conversations")
    }

    pub(crate) async fn conversation_messages(
        &self,
        lane: LaneKey,
    ) -> Result<Option<Vec<MessageRow>>, StoreError> {
        not_yet("conversation_messages")
    }

    pub(crate) async fn last_customer_at(&self, lane: LaneKey) -> Result<Option<i64>, StoreError> {
        not_yet("last_customer_at")
    }

    pub(crate) async fn last_customer_timestamp(
        &self,
        lane: LaneKey,
    ) -> Result<Option<i64>, StoreError> {
        not_yet("last_customer_timestamp")
    }

    pub(crate) async fn holder(&self, lane: LaneKey) -> Result<Holder, StoreError> {
        not_yet("holder")
    }

    pub(crate) async fn hand_over(
        &self,
        lane: LaneKey,
        trigger: &'static str,
        reason: Option<String>,
        notice: Vec<String>,
    ) -> Result<bool, StoreError> {
        not_yet("hand_over")
    }

    pub(crate) async fn release(
        &self,
        lane: LaneKey,
        trigger: &'static str,
    ) -> Result<bool, StoreError> {
        not_yet("release")
    }

    pub(crate) async fn inbox_snapshot(
        &self,
        limit: usize,
        all: bool,
    ) -> Result<InboxSnapshot, StoreError> {
        not_yet("inbox_snapshot")
    }

    pub(crate) async fn requeue_turn(
        &self,
        turn_id: i64,
        force: bool,
    ) -> Result<Requeue, StoreError> {
        not_yet("requeue_turn")
    }

    pub(crate) async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError> {
        not_yet("dead_letter")
    }

    pub(crate) async fn is_opted_out(&self, lane: LaneKey) -> Result<bool, StoreError> {
        not_yet("is_opted_out")
    }

    pub(crate) async fn queue_operator_reply(
        &self,
        lane: LaneKey,
        text: String,
        parts: Vec<String>,
    ) -> Result<Option<i64>, StoreError> {
        not_yet("queue_operator_reply")
    }

    pub(crate) async fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        not_yet("pending_outbox")
    }

    pub(crate) async fn hold_for_window(
        &self,
        lane: LaneKey,
        key: i64,
        from: usize,
        template: Option<OutgoingMessage>,
        reopens: i64,
    ) -> Result<Option<i64>, StoreError> {
        not_yet("hold_for_window")
    }

    pub(crate) async fn finish_outbox(
        &self,
        id: i64,
        failed_part: Option<usize>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        not_yet("finish_outbox")
    }

    pub(crate) async fn sent_message_text(
        &self,
        wamid: String,
    ) -> Result<Option<String>, StoreError> {
        not_yet("sent_message_text")
    }

    pub(crate) async fn reactions(&self, lane: LaneKey) -> Result<Vec<Reaction>, StoreError> {
        not_yet("reactions")
    }
}
