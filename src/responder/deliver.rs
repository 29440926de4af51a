//! Sending saved parts, one by one, exactly once: a turn's reply (what its tools sent, then
//! its text) and outbox messages (operator replies, handoff notices, window templates) alike.
//!
//! Each part is marked `sending` (committed) before the Graph call and `sent`, with the id Meta
//! returned, after it; the next part goes out only then. A turn's new reply is saved in the
//! commit that marks its first part ([`Sender::save_and_send`]), and its last part's `sent` may
//! wait for the turn's close, the next write ([`Store::mark_last_part_sent`]). Every send carries
//! `biz_opaque_callback_data` naming its part, which Meta echoes in the part's status
//! notifications. A part found `sending` when its owner resumes was handed to Meta by an
//! attempt that never recorded the answer (a kill -9 in between, a lost connection): its status
//! notification settles it, and it is sent again only when none arrives within
//! [`CONFIRM_WINDOW`] of the restart. Only the first part of a turn's reply quotes the inbound
//! message.
//!
//! The 24-hour window is checked before every part but a template: outside it, with
//! `window.reopen_template` set, the remaining parts are held and the template is queued (once
//! per silence) in the same commit; without it, the part fails with `outside_24h_window` and no
//! Graph call is made. Meta's 131047 (the window closed by its clock) is handled the same way.
//!
//! The mark `sending` is also the send fence: the store refuses it, in the mark's own commit,
//! once a person has a turn's conversation or the customer opted out, or once an outbox
//! message was cancelled or (PostgreSQL) this replica's claim on it ran out. Whichever replica
//! committed that, the refused part and those after it do not go out from here
//! ([`Delivered::Refused`]).

use crate::handoff::Clock;
use crate::inbox::{
    FirstPart, LaneKey, ReplyPart, SendRefusal, Store, StoreError, TurnOutcome, CONFIRM_WINDOW,
};
use crate::metrics::{Metrics, SendOutcome, WindowLabels, WindowOutcome};
use crate::retry;
use crate::whatsapp::graph::{GraphClient, GraphError, OutgoingMessage};
use crate::whatsapp::window;
use std::time::Duration;

/// How often a resumed owner looks for the status notification of a part left `sending`.
const CONFIRM_POLL: Duration = Duration::from_millis(200);

/// What sending needs besides the parts: the Graph client in force, the store, the clock of
/// the 24-hour window and the template that reopens it.
pub struct Sender<'a> {
    pub graph: &'a GraphClient,
    pub store: &'a Store,
    pub metrics: &'a Metrics,
    pub clock: &'a Clock,
    /// `window.reopen_template`, when configured.
    pub reopen_template: Option<OutgoingMessage>,
}

/// Whose parts go out, to whom.
pub struct Delivery<'a> {
    /// The parts' key: a turn id, or `outbox_key(id)` of an outbox message.
    pub key: i64,
    pub lane: &'a LaneKey,
    /// The inbound message the first part quotes (a turn's reply), if any.
    pub quote: Option<&'a str>,
    /// When the customer last wrote (unix ms) as far as the caller knows cheaply (a turn's
    /// own messages); the store is asked only when this says the window closed.
    pub last_customer_at: Option<i64>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Every part is with Meta.
    Done,
    /// The window closed: the remaining parts wait for the customer's next message (the
    /// reopen template is queued). `template_queued` when this call queued it.
    Held { template_queued: bool },
    /// A part failed for good (recorded on the part); the reason.
    Failed(String),
    /// Meta unreachable or a store error: try again later; the reason.
    RetryLater(String),
    /// The store refused the next part (a person has the conversation, the customer opted
    /// out, the outbox message is cancelled or another replica's now): it and the parts after
    /// it never go out from here.
    Refused(SendRefusal),
}

impl Delivered {
    /// What it means for a turn. A held reply is done for the turn: it goes out at the
    /// conversation's next turn.
    pub(super) fn into_turn_outcome(self) -> TurnOutcome {
        match self {
            // A person has the conversation or the customer opted out (committed on any
            // replica): the turn ends as a take-over ends it on one process, done, its
            // remaining parts unsent.
            Delivered::Done | Delivered::Held { .. } | Delivered::Refused(_) => TurnOutcome::Done,
            Delivered::Failed(reason) => TurnOutcome::Failed(reason),
            Delivered::RetryLater(reason) => TurnOutcome::RetryLater {
                after: retry::TURN_AFTER_GRAPH_OUTAGE,
                reason,
            },
        }
    }
}

impl Sender<'_> {
    fn now_ms(&self) -> i64 {
        (self.clock)().as_millisecond()
    }

    /// Saves a turn's new reply and sends it. When its first part may go out now (a template,
    /// or the window open by the caller's cheap value), the save marks that part `sending` in
    /// the same commit, under the same send fence ([`Store::save_reply_marking_first`]: one
    /// commit less per reply). `Err`: the reply could not be saved (nothing went out).
    pub async fn save_and_send(
        &self,
        delivery: &Delivery<'_>,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Delivered, StoreError> {
        let now = self.now_ms();
        let first_may_go = messages.first().is_some_and(OutgoingMessage::is_template)
            || delivery
                .last_customer_at
                .is_some_and(|at| window::is_open(at, now));
        if !first_may_go {
            let parts = self
                .store
                .save_reply_messages(delivery.key, messages)
                .await?;
            return Ok(self.send_parts(delivery, parts).await);
        }
        let (parts, first) = self
            .store
            .save_reply_marking_first(delivery.key, messages)
            .await?;
        Ok(match first {
            FirstPart::Marked { .. } => self.send(delivery, parts, true).await,
            FirstPart::Unmarked => self.send(delivery, parts, false).await,
            FirstPart::Refused(refusal) => refused(delivery.key, 0, refusal),
        })
    }

    /// Sends the parts Meta does not have yet, in order.
    pub async fn send_parts(&self, delivery: &Delivery<'_>, parts: Vec<ReplyPart>) -> Delivered {
        self.send(delivery, parts, false).await
    }

    /// [`send_parts`](Self::send_parts); with `first_marked`, part 0 was marked `sending` by
    /// the commit that saved it (and its window checked): it goes to Meta without a mark.
    async fn send(
        &self,
        delivery: &Delivery<'_>,
        parts: Vec<ReplyPart>,
        first_marked: bool,
    ) -> Delivered {
        let (from, to) = (&delivery.lane.phone_number_id, &delivery.lane.user);
        let quoted_index = parts
            .iter()
            .find(|p| p.message.may_quote())
            .map(|p| p.index);
        let mut last_customer_at = delivery.last_customer_at;
        let mut first = true;
        let last_index = parts.last().map(|p| p.index);
        for part in parts.iter().filter(|p| p.outbound_id.is_none()) {
            let marked = first_marked && part.index == 0;
            if let Some(since) = part.sending_since.filter(|_| !marked) {
                match settle(self.store, delivery.key, part.index, since).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => return retry_later(format!("cannot settle a part: {e}")),
                }
            }
            if !part.message.is_template() && !marked {
                match self.window_open(delivery.lane, &mut last_customer_at).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return self.outside_window(delivery, part, last_customer_at).await
                    }
                    Err(e) => return retry_later(format!("cannot read the 24-hour window: {e}")),
                }
            }
            if !first && !self.graph.is_dry_run() {
                tokio::time::sleep(self.graph.reply_part_interval()).await;
            }
            first = false;
            let reply_to = delivery.quote.filter(|_| Some(part.index) == quoted_index);
            let callback = self
                .store
                .part_ref(delivery.key, part.index)
                .callback_data();
            if !marked {
                if let Err(e) = self.store.mark_part_sending(delivery.key, part.index).await {
                    if let Some(refusal) = e.send_refusal() {
                        return refused(delivery.key, part.index, refusal);
                    }
                    return retry_later(format!("cannot mark a part as sending: {e}"));
                }
            }
            let sent = self
                .graph
                .send_message(from, to, &part.message, reply_to, Some(&callback))
                .await;
            match sent {
                Ok(sent) => {
                    self.metrics.graph_send(SendOutcome::Accepted, "");
                    let last = Some(part.index) == last_index;
                    if let Err(e) =
                        record_sent(self.store, delivery.key, part.index, sent.id, last).await
                    {
                        // Meta has the part but we could not record it: stop here. The part
                        // stays `sending`, so the resumed owner waits for its status instead of
                        // repeating it.
                        tracing::error!(key = delivery.key, error = %e, "cannot record an accepted part");
                        return retry_later(e.to_string());
                    }
                }
                Err(e) => {
                    // Meta answered with an error: it does not have the part. Without an
                    // answer (timeout, connection lost) it may have it: the part stays
                    // `sending`.
                    if e.api().is_some() {
                        if let Err(e) = self
                            .store
                            .clear_part_sending(delivery.key, part.index)
                            .await
                        {
                            tracing::warn!(key = delivery.key, error = %e, "cannot clear a refused part's sending mark");
                        }
                    }
                    if e.code() == Some(window::OUTSIDE_WINDOW_CODE) {
                        // Meta's clock says the window closed (clock skew, a late delivery).
                        self.metrics.graph_send(SendOutcome::FinalError, "131047");
                        return self.outside_window(delivery, part, last_customer_at).await;
                    }
                    return self.failed_part(delivery, part, e).await;
                }
            }
        }
        Delivered::Done
    }

    /// Whether free-form messages may go out now. The caller's cheap value first; only when
    /// it says closed, the conversation's newest message from the store (the customer may have
    /// written since).
    async fn window_open(
        &self,
        lane: &LaneKey,
        last: &mut Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        if last.is_some_and(|at| window::is_open(at, now)) {
            return Ok(true);
        }
        let stored = self.store.last_customer_at(lane.clone()).await?;
        *last = match (*last, stored) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // A conversation the customer never wrote in has no window to send in.
        Ok(last.is_some_and(|at| window::is_open(at, now)))
    }

    /// The window is closed at `part`: hold the rest behind the reopen template, or fail.
    async fn outside_window(
        &self,
        delivery: &Delivery<'_>,
        part: &ReplyPart,
        last_customer_at: Option<i64>,
    ) -> Delivered {
        let Some(template) = self.reopen_template.clone() else {
            let reason = format!(
                "{}: part {} not sent: {}",
                window::OUTSIDE_WINDOW,
                part.index + 1,
                window::explanation(false)
            );
            tracing::warn!(
                key = delivery.key,
                part = part.index + 1,
                "outside the 24-hour window; not sent"
            );
            self.metrics
                .window_outcomes
                .get_or_create(&WindowLabels {
                    outcome: WindowOutcome::Failed,
                })
                .inc();
            if let Err(e) = self
                .store
                .mark_part_failed(delivery.key, part.index, reason.clone())
                .await
            {
                tracing::error!(key = delivery.key, error = %e, "cannot record a part failed for the window");
            }
            return Delivered::Failed(reason);
        };
        let held = self
            .store
            .hold_for_window(
                delivery.lane.clone(),
                delivery.key,
                part.index,
                Some(template),
                last_customer_at.unwrap_or_default(),
            )
            .await;
        match held {
            Ok(queued) => {
                tracing::info!(
                    key = delivery.key,
                    part = part.index + 1,
                    template_queued = queued.is_some(),
                    "outside the 24-hour window: held until the customer writes; reopen template queued"
                );
                self.metrics
                    .window_outcomes
                    .get_or_create(&WindowLabels {
                        outcome: WindowOutcome::Held,
                    })
                    .inc();
                Delivered::Held {
                    template_queued: queued.is_some(),
                }
            }
            Err(e) => retry_later(format!("cannot hold parts for the 24-hour window: {e}")),
        }
    }

    async fn failed_part(
        &self,
        delivery: &Delivery<'_>,
        part: &ReplyPart,
        error: GraphError,
    ) -> Delivered {
        let code = error.code().map(|c| c.to_string()).unwrap_or_default();
        let reason = format!("part {} not sent: {error}", part.index + 1);
        if error.is_retryable() {
            // The client already retried with backoff; Meta is down or throttling hard. Keep
            // the owner and try again later: the parts already accepted stay accepted.
            self.metrics.graph_send(SendOutcome::RetryLater, &code);
            return retry_later(reason);
        }
        // Final (131026 undeliverable, 190 token, 100 bad parameter...): the client logged the
        // code and details; record it on the part.
        self.metrics.graph_send(SendOutcome::FinalError, &code);
        if let Err(e) = self
            .store
            .mark_part_failed(delivery.key, part.index, reason.clone())
            .await
        {
            tracing::error!(key = delivery.key, error = %e, "cannot record a failed part");
        }
        Delivered::Failed(reason)
    }

    /// Whether free-form text may go out to `lane` now (for `error_reply`, sent outside the
    /// parts): the same check as a part's.
    pub(super) async fn may_send_free_form(&self, lane: &LaneKey, hint: Option<i64>) -> bool {
        let mut last = hint;
        // A store error must not silence the apology: let Meta decide then.
        self.window_open(lane, &mut last).await.unwrap_or(true)
    }
}

fn retry_later(reason: String) -> Delivered {
    Delivered::RetryLater(reason)
}

/// The store refused part `index` (0-based): it and the parts after it stay here.
fn refused(key: i64, index: usize, refusal: SendRefusal) -> Delivered {
    tracing::info!(key, part = index + 1, reason = %refusal, "part not sent; this delivery stops");
    Delivered::Refused(refusal)
}

/// A part an earlier attempt handed to Meta without recording the answer: `true` once its
/// status notification confirms Meta has it, `false` when none came by the deadline (it is
/// then sent again). The deadline is [`CONFIRM_WINDOW`] after the later of the mark, this
/// process's start and (PostgreSQL) this replica's takeover of the conversation, so
/// notifications Meta held back while the server was down have time to arrive.
async fn settle(store: &Store, key: i64, index: usize, since: i64) -> Result<bool, StoreError> {
    let confirm = i64::try_from(CONFIRM_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let deadline = since
        .max(store.confirm_window_start(key).await)
        .saturating_add(confirm);
    tracing::info!(
        key,
        part = index + 1,
        "part was handed to Meta before a restart; waiting for its status notification"
    );
    loop {
        if store.part_outbound_id(key, index).await?.is_some() {
            tracing::info!(
                key,
                part = index + 1,
                "part confirmed by its status notification; not sent again"
            );
            return Ok(true);
        }
        let left = deadline - chrono::Utc::now().timestamp_millis();
        if left <= 0 {
            tracing::warn!(
                key,
                part = index + 1,
                window_seconds = CONFIRM_WINDOW.as_secs(),
                "no status notification for a part handed to Meta before a restart; sending it again"
            );
            return Ok(false);
        }
        tokio::time::sleep(CONFIRM_POLL.min(Duration::from_millis(left as u64))).await;
    }
}

/// Meta has the part: recording it is what keeps it from being sent again, so a failed commit
/// (a locked database, say) is tried a few more times before the owner gives up. The reply's
/// `last` part's mark may wait for the turn's close, which comes next.
async fn record_sent(
    store: &Store,
    key: i64,
    index: usize,
    outbound_id: String,
    last: bool,
) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let marked = if last {
            store
                .mark_last_part_sent(key, index, outbound_id.clone())
                .await
        } else {
            store.mark_part_sent(key, index, outbound_id.clone()).await
        };
        let error = match marked {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // A lost lease is final: another replica owns the conversation now.
        if error.is_lease_lost() {
            return Err(error);
        }
        let Some(wait) = retry::RECORD_ACCEPTED_PART.after(attempt) else {
            return Err(error);
        };
        tracing::warn!(key, attempt, error = %error, "recording an accepted part failed; trying again");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// When the customer last wrote, as the turn's own messages tell (no store read). Without
/// their arrival time, a timestamp older than Meta ever delivers counts as now (see
/// `whatsapp::window`); a backlog that old is caught by Meta's 131047 instead.
pub(super) fn turn_last_customer_at(turn: &crate::inbox::Turn) -> Option<i64> {
    let now = chrono::Utc::now().timestamp_millis();
    turn.messages
        .iter()
        .map(|m| window::customer_message_at(m.timestamp, now))
        .max()
}
