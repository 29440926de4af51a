//! The take-over state machine: a conversation goes to a person (operator, keyword, the
//! agent's tool) and back to the agent (operator, the release timer). The store commits each
//! change; this side mirrors it, stops the turn running here, tells the console, the team's
//! `notify_url`, the metrics, and the other replicas (a `NOTIFY`, see [`Handoff::announce`]).

use super::{conversation_id, lock, millis, notify, outbox, Handoff, Trigger};
use crate::inbox::store::HumanConversation;
use crate::inbox::{LaneKey, StoreError};
use crate::metrics::{HandoffLabels, ReleaseLabels, ReleaseTrigger};
use serde_json::json;

impl Handoff {
    /// Take a conversation over. `stop_running`: stop the turn running for it (not when the
    /// turn itself asked, through the tool). `notify_customer`: queue the notice. Idempotent.
    pub async fn take_over(
        &self,
        lane: &LaneKey,
        trigger: Trigger,
        reason: Option<String>,
        notice: Vec<String>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .store
            .hand_over(lane.clone(), trigger.as_str(), reason.clone(), notice)
            .await?;
        if changed {
            self.went_human(lane, trigger, reason);
            self.outbox_wake.notify_one();
        }
        Ok(changed)
    }

    /// The store says `lane` went to a person: mirror, stop its turn, tell everyone (the
    /// other replicas too).
    pub(super) fn went_human(&self, lane: &LaneKey, trigger: Trigger, reason: Option<String>) {
        self.announce(lane);
        let now = millis(self.now());
        lock(&self.humans).insert(
            lane.clone(),
            HumanConversation {
                lane: lane.clone(),
                since: now,
                last_operator_at: None,
                trigger: Some(trigger.as_str().into()),
                reason: reason.clone(),
            },
        );
        if trigger != Trigger::Tool {
            if let Some((_, token)) = lock(&self.running).get(lane) {
                token.cancel();
            }
        }
        self.metrics
            .handoffs
            .get_or_create(&HandoffLabels {
                trigger: trigger.label(),
            })
            .inc();
        self.refresh_metrics();
        tracing::info!(trigger = trigger.as_str(), conversation = %conversation_id(lane), "conversation handed to a person");
        self.events.send(
            "conversation",
            json!({"conversation": conversation_id(lane), "state": "human",
                   "trigger": trigger.as_str(), "reason": reason}),
        );
        if trigger != Trigger::Operator {
            self.notify_team(lane, trigger, reason);
        }
    }

    fn notify_team(&self, lane: &LaneKey, trigger: Trigger, reason: Option<String>) {
        let loaded = self.config.current();
        let channel = &loaded.config.whatsapp;
        if channel.handoff.notify_url.is_empty() {
            return;
        }
        let id = conversation_id(lane);
        let console = format!(
            "{}/console/#conversation={id}",
            channel.console.public_url.trim_end_matches('/')
        );
        let body = json!({
            "event": "handoff",
            "conversation": {"id": id, "phone_number_id": lane.phone_number_id, "user": lane.user},
            "trigger": trigger.as_str(),
            "reason": reason,
            "console_url": console,
        });
        notify::spawn(self.http.clone(), channel.handoff.notify_url.clone(), body);
    }

    /// Give a conversation back to the agent (`trigger`: operator or timeout). Idempotent.
    pub async fn release(
        &self,
        lane: &LaneKey,
        trigger: ReleaseTrigger,
    ) -> Result<bool, StoreError> {
        let trigger_label = trigger;
        let trigger = trigger.as_str();
        let info = self.human_info(lane);
        let changed = self.store.release(lane.clone(), trigger).await?;
        lock(&self.humans).remove(lane);
        if let (true, Some(info)) = (changed, info) {
            let after = info.last_operator_at.unwrap_or(info.since).max(info.since);
            outbox::remember_since(self, lane, after, millis(self.now())).await;
        }
        if changed {
            self.announce(lane);
            self.metrics
                .handoff_releases
                .get_or_create(&ReleaseLabels {
                    trigger: trigger_label,
                })
                .inc();
            tracing::info!(trigger, conversation = %conversation_id(lane), "conversation back with the agent");
            self.events.send(
                "conversation",
                json!({"conversation": conversation_id(lane), "state": "agent", "trigger": trigger}),
            );
        }
        self.refresh_metrics();
        Ok(changed)
    }

    /// Tell the other replicas (PostgreSQL `NOTIFY`) that `lane` changed hands or opted out
    /// or back in, once the store committed it: they stop their turn for it at once instead
    /// of at their next poll ([`replicas`](super::replicas)). A hint only, sent beside the
    /// caller: the store's send fence already keeps their parts from going out.
    pub(super) fn announce(&self, lane: &LaneKey) {
        if !self.store.is_shared() {
            return;
        }
        let (store, lane) = (self.store.clone(), lane.clone());
        tokio::spawn(async move {
            if let Err(e) = store.announce_conversation_change(&lane).await {
                tracing::debug!(error = %e, "cannot tell the other replicas of a take-over; they see it at their next poll");
            }
        });
    }
}
