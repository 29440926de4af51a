//! Handoff at webhook intake: customer messages equal to a keyword, the notice they get, and
//! what the service does once the webhook's commit is done.

use super::{conversation_id, hours, Handoff, Trigger};
use crate::config::WhatsAppChannel;
use crate::inbox::store::{KeywordHandoff, ASKED_FOR_PERSON};
use crate::inbox::{Batch, InboundState, LaneKey, NewInbound, RecordOutcome};
use crate::whatsapp::payload::MessageKind;
use crate::whatsapp::{format, split};
use serde_json::json;

impl Handoff {
    /// The notice for the customer now: `handoff.message`, or `closed_message` outside
    /// `handoff.hours`; formatted and split like any reply.
    pub fn notice(&self, channel: &WhatsAppChannel) -> Vec<String> {
        let settings = &channel.handoff;
        let open = match hours::Schedule::parse(&settings.hours) {
            Ok(schedule) => schedule.is_open(self.now()),
            Err(_) => true, // validated at load; never here
        };
        let text = if open {
            &settings.message
        } else {
            &settings.closed_message
        };
        split::split_message(&format::to_whatsapp(text), split::WHATSAPP_TEXT_LIMIT)
    }

    /// Webhook intake: customer messages equal to a `handoff.keywords` entry are kept without a
    /// turn and hand their conversation to a person in the same commit, with the notice queued.
    pub fn mark_keywords(&self, batch: &mut Batch, channel: &WhatsAppChannel) {
        let keywords = &channel.handoff.keywords;
        if keywords.is_empty() {
            return;
        }
        let mut notice: Option<Vec<String>> = None;
        for m in batch.messages.iter_mut() {
            if m.state != InboundState::Pending {
                continue;
            }
            let Some(text) = typed_text(m) else { continue };
            if !is_keyword(keywords, &text) {
                continue;
            }
            m.state = InboundState::Skipped;
            m.note = Some(ASKED_FOR_PERSON.into());
            batch.handoffs.push(KeywordHandoff {
                lane: m.lane.clone(),
                message_id: m.message_id.clone(),
                notice: notice.get_or_insert_with(|| self.notice(channel)).clone(),
            });
        }
    }

    /// After a webhook's commit: opt-outs and resumes, conversations handed over by a
    /// keyword, live events.
    pub fn after_intake(&self, outcome: &RecordOutcome, lanes: &[LaneKey]) {
        self.after_opt_changes(outcome);
        for lane in &outcome.handed_over {
            self.went_human(lane, Trigger::Keyword, None);
        }
        if !outcome.handed_over.is_empty() {
            self.outbox_wake.notify_one();
        }
        // A message held for the 24-hour window goes out once the customer writes again.
        if outcome.new_pending_messages + outcome.new_skipped > 0
            && self.outbox_holds.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.outbox_wake.notify_one();
        }
        for lane in lanes {
            self.events.send(
                "message",
                json!({"conversation": conversation_id(lane), "direction": "in"}),
            );
        }
    }
}

/// Whether a customer's message is one of `keywords` (handoff, opt-out, resume): the whole
/// text, trimmed, case-insensitive.
pub(super) fn is_keyword(keywords: &[String], text: &str) -> bool {
    let text = text.trim().to_lowercase();
    keywords.iter().any(|k| k.trim().to_lowercase() == text)
}

/// What the customer typed or tapped in `m` (from its parsed JSON when the webhook kept it).
pub(super) fn typed_text(m: &NewInbound) -> Option<String> {
    match &m.json {
        Some(json) => typed_text_of(json),
        None => serde_json::from_str(&m.raw)
            .ok()
            .and_then(|j| typed_text_of(&j)),
    }
}

/// What the customer typed or tapped, read by the payload's one reader of message types.
fn typed_text_of(message: &serde_json::Value) -> Option<String> {
    MessageKind::read(message).typed_text().map(str::to_owned)
}
