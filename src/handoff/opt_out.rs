//! Opt-out around the store's commit: which customer messages are STOP or START keywords
//! (before), and what the service does once the commit opted a customer out or back in
//! (after): the mirror for the turn gate, stopping a running turn, the outbox, events, metrics.
//! The state itself and its rules live in the store (`inbox::store::opt_out`).

use super::intake::{is_keyword, typed_text};
use super::{conversation_id, lock, Handoff};
use crate::config::WhatsAppChannel;
use crate::inbox::store::{OptChange, OptSource};
use crate::inbox::{Batch, InboundState, LaneKey, RecordOutcome, Turn};
use crate::whatsapp::{format, split};
use serde_json::json;

/// Whether `text` equals one of `keywords` (trimmed, case-insensitive), like handoff keywords.
impl Handoff {
    /// Webhook intake: customer messages equal to an `opt_out.keywords` or `resume_keywords`
    /// entry become opt changes, applied by the store in the same commit as the message (which
    /// decides, knowing the state, whether they change anything).
    pub fn mark_opt_keywords(&self, batch: &mut Batch, channel: &WhatsAppChannel) {
        let settings = &channel.opt_out;
        if settings.keywords.is_empty() && settings.resume_keywords.is_empty() {
            return;
        }
        let mut reply: Option<Vec<String>> = None;
        for m in &batch.messages {
            if m.state != InboundState::Pending {
                continue;
            }
            let Some(text) = typed_text(m) else { continue };
            let opt_out = if is_keyword(&settings.keywords, &text) {
                true
            } else if is_keyword(&settings.resume_keywords, &text) {
                false
            } else {
                continue;
            };
            let reply = if opt_out {
                reply
                    .get_or_insert_with(|| {
                        split::split_message(
                            &format::to_whatsapp(&settings.reply),
                            split::WHATSAPP_TEXT_LIMIT,
                        )
                    })
                    .clone()
            } else {
                Vec::new()
            };
            batch.opt_changes.push(OptChange {
                lane: m.lane.clone(),
                message_id: Some(m.message_id.clone()),
                opt_out,
                source: OptSource::Keyword,
                timestamp: m.timestamp,
                reply,
            });
        }
    }

    /// After a webhook's commit: customers opted out (their running turn stops, the
    /// confirmation goes out) or back in.
    pub fn after_opt_changes(&self, outcome: &RecordOutcome) {
        for (lane, at) in &outcome.opted_out {
            self.announce(lane);
            lock(&self.opted_out).insert(lane.clone(), *at);
            // Nothing more goes out: a reply being written for an earlier message is dropped.
            if let Some((_, token)) = lock(&self.running).get(lane) {
                token.cancel();
            }
            self.metrics.opt_outs.inc();
            tracing::info!(conversation = %conversation_id(lane), "customer opted out");
            self.events.send(
                "conversation",
                json!({"conversation": conversation_id(lane), "opted_out": true}),
            );
        }
        for lane in &outcome.resumed {
            self.announce(lane);
            lock(&self.opted_out).remove(lane);
            self.metrics.opt_resumes.inc();
            tracing::info!(conversation = %conversation_id(lane), "customer opted back in");
            self.events.send(
                "conversation",
                json!({"conversation": conversation_id(lane), "opted_out": false}),
            );
        }
        // The confirmation waits in the outbox (also when the same body resumed already).
        if !outcome.opted_out.is_empty() || !outcome.resumed.is_empty() {
            self.outbox_wake.notify_one();
        }
    }

    /// Whether the customer of `lane` is opted out now (the mirror of the store).
    pub fn is_opted_out(&self, lane: &LaneKey) -> bool {
        lock(&self.opted_out).contains_key(lane)
    }

    /// A turn whose messages all came before the customer's STOP (a turn waiting for a retry,
    /// say) is not answered. Compared by Meta's timestamps, so the turn of a resume keyword
    /// (newer than the STOP) runs even if the mirror has not heard of the resume yet.
    pub fn silenced_by_opt_out(&self, turn: &Turn) -> bool {
        let Some(stop) = lock(&self.opted_out).get(&turn.lane).copied() else {
            return false;
        };
        turn.messages.iter().all(|m| m.timestamp < stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_the_whole_message_trimmed_and_in_any_case() {
        let keywords = vec!["STOP".to_owned(), " Baja ".to_owned()];
        assert!(is_keyword(&keywords, "  stop "));
        assert!(is_keyword(&keywords, "BAJA"));
        assert!(!is_keyword(&keywords, "please stop"));
        assert!(!is_keyword(&keywords, ""));
    }
}
