//! The responder: answers one turn on WhatsApp. It is the [`TurnHandler`] the dispatcher calls.
//!
//! For a turn it marks the last message read (with the typing indicator, refreshed while the
//! turn runs), resolves media through the Graph API (transcribing audio when the agent has
//! `spec.transcription`), runs the agent that serves the number, formats the reply for
//! WhatsApp, splits it, saves the parts, and sends them one by one, recording each part Meta
//! accepted before sending the next. A resumed turn (after a crash or a retry) that already
//! saved its reply skips the agent and sends only what was not accepted.

mod deliver;
mod inputs;
mod typing;

use crate::agent::runtime::{AgentRuntime, TurnAnswer, TurnRequest};
use crate::inbox::{Store, Turn, TurnHandler, TurnOutcome};
use crate::memory;
use crate::metrics::Metrics;
use crate::runtime::SharedConfig;
use crate::transcription::Transcriber;
use crate::whatsapp::graph::GraphClient;
use crate::whatsapp::{format, split};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Everything a turn needs, built once at start.
pub struct Responder {
    config: SharedConfig,
    store: Store,
    graph: GraphClient,
    agents: AgentRuntime,
    metrics: Arc<Metrics>,
    /// Voice notes to text, for agents with `spec.transcription`.
    transcriber: Transcriber,
}

impl Responder {
    pub fn new(
        config: SharedConfig,
        store: Store,
        graph: GraphClient,
        agents: AgentRuntime,
        metrics: Arc<Metrics>,
        transcriber: Transcriber,
    ) -> Self {
        Responder {
            config,
            store,
            graph,
            agents,
            metrics,
            transcriber,
        }
    }

    async fn answer(&self, turn: Turn) -> TurnOutcome {
        let loaded = self.config.current();
        let channel = &loaded.config.whatsapp;
        let lane = &turn.lane;
        let Some(agent_name) = channel
            .agent_for_number(&lane.phone_number_id)
            .map(str::to_owned)
        else {
            tracing::warn!(
                phone_number_id = %lane.phone_number_id,
                "no agent serves this business number any more; the turn is closed unanswered"
            );
            return TurnOutcome::Done;
        };

        // A reply saved by an earlier attempt is sent as it was: never generate a second one.
        let parts = match self.store.load_reply(turn.id).await {
            Ok(Some(parts)) => parts,
            Ok(None) => {
                let _typing = typing::start(&self.graph, &turn);
                let Some(text) = self
                    .generate(&turn, &agent_name, &channel.error_reply)
                    .await
                else {
                    return TurnOutcome::Done; // nothing to answer (reactions only, say)
                };
                let chunks =
                    split::split_message(&format::to_whatsapp(&text), split::WHATSAPP_TEXT_LIMIT);
                if chunks.is_empty() {
                    return TurnOutcome::Done;
                }
                match self.store.save_reply(turn.id, chunks).await {
                    Ok(parts) => parts,
                    Err(e) => return retry_later(format!("cannot save the reply: {e}")),
                }
            }
            Err(e) => return retry_later(format!("cannot read the saved reply: {e}")),
        };
        deliver::send_parts(&self.graph, &self.store, &self.metrics, &turn, parts).await
    }

    /// Run the agent; `None` when the turn holds nothing to answer.
    async fn generate(&self, turn: &Turn, agent_name: &str, error_reply: &str) -> Option<String> {
        // The agent's transcription settings as currently loaded (a reload applies at once).
        let loaded = self.config.current();
        let speech = loaded
            .config
            .agents
            .get(agent_name)
            .and_then(|agent| agent.spec.transcription.as_ref())
            .map(|spec| inputs::Speech {
                transcriber: &self.transcriber,
                spec,
            });
        let parts = inputs::resolve(&self.graph, &self.metrics, turn, speech.as_ref()).await;
        if parts.is_empty() {
            return None;
        }
        let last = turn.last_message();
        let request = TurnRequest {
            memory_key: memory::key_for_whatsapp(&turn.lane.user),
            turn_id: turn.id,
            contact_name: last.contact_name.clone(),
            phone: turn.lane.user.clone(),
            parts,
        };
        let result = self.agents.run(agent_name, request).await;
        match result.outcome {
            TurnAnswer::Answered(reply) if !reply.trim().is_empty() => Some(reply),
            TurnAnswer::Answered(_) => {
                tracing::warn!(
                    agent = agent_name,
                    "the model answered with empty text; sending error_reply"
                );
                Some(error_reply.to_owned())
            }
            TurnAnswer::Failed { .. } => Some(error_reply.to_owned()),
            TurnAnswer::Nothing => None,
        }
    }
}

fn retry_later(reason: String) -> TurnOutcome {
    tracing::error!(reason = %reason, "turn will be retried");
    TurnOutcome::RetryLater {
        after: std::time::Duration::from_secs(5),
        reason,
    }
}

impl TurnHandler for Responder {
    fn handle(&self, turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(self.answer(turn))
    }
}
