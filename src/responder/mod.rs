//! The responder: answers one turn on WhatsApp. It is the [`TurnHandler`] the dispatcher calls.
//!
//! For a turn it marks the last message read (with the typing indicator, refreshed while the
//! turn runs), resolves media through the Graph API (transcribing audio when the agent has
//! `spec.transcription`), runs the agent that serves the number, formats the reply for
//! WhatsApp, splits it, saves the parts, and sends them one by one, recording each part Meta
//! accepted before sending the next. A resumed turn (after a crash or a retry) that already
//! saved its reply skips the agent and sends only what was not accepted. The store may refuse
//! a part (a person took the conversation over, the customer opted out, on any replica): the
//! turn then ends there, as a take-over seen by this process ends it.
//!
//! - `deliver`: the parts, exactly once, within the 24-hour window, behind the send fence.
//! - `held`: parts earlier turns held for the window, sent first.
//! - `error_reply`: the apology when no model answered.
//! - `engines`, `inputs`, `typing`: the agents and Graph client in force, what the customer
//!   sent as the agent's input, the typing indicator.

pub(crate) mod deliver;
mod engines;
mod error_reply;
mod held;
mod inputs;
mod typing;

pub use engines::{EngineError, EngineFactory, Engines, Generation};

use crate::agent::runtime::{TurnAnswer, TurnRequest};
use crate::config::Config;
use crate::handoff::{Handoff, Trigger};
use crate::inbox::{Store, Turn, TurnHandler, TurnOutcome};
use crate::live_config::{LoadedConfig, SharedConfig};
use crate::memory;
use crate::metrics::Metrics;
use crate::transcription::Transcriber;
use crate::whatsapp::graph::OutgoingMessage;
use crate::whatsapp::{format, split};
use deliver::{Delivered, Delivery, Sender};
use engines::CurrentGeneration;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Everything a turn needs. The engines (agents, Graph client) are rebuilt on config reload;
/// each turn takes one snapshot of config and engines (one [`Generation`], a single value) at
/// its start and keeps it to the end.
pub struct Responder {
    store: Store,
    metrics: Arc<Metrics>,
    /// Voice notes to text, for agents with `spec.transcription`.
    transcriber: Transcriber,
    factory: EngineFactory,
    generation: CurrentGeneration,
    /// Human handoff: no turn while a person has the conversation; the `handoff_to_human` tool.
    handoff: Option<Arc<Handoff>>,
    /// The time, for the 24-hour window (the handoff service's, injectable in tests).
    clock: crate::handoff::Clock,
}

impl Responder {
    /// Build the engines for the config in force.
    pub fn new(
        config: SharedConfig,
        store: Store,
        metrics: Arc<Metrics>,
        transcriber: Transcriber,
        factory: EngineFactory,
    ) -> Result<Self, EngineError> {
        let loaded = config.current();
        let engines = factory.build(&loaded.config, None)?;
        Ok(Responder {
            store,
            metrics,
            transcriber,
            factory,
            generation: CurrentGeneration::new(Generation { loaded, engines }),
            handoff: None,
            clock: Arc::new(jiff::Timestamp::now),
        })
    }

    /// Plug in human handoff (the server does; tools without it just answer). Its clock
    /// becomes the responder's, so the 24-hour window reads the same time everywhere.
    pub fn set_handoff(&mut self, handoff: Arc<Handoff>) {
        self.clock = handoff.clock();
        self.handoff = Some(handoff);
    }

    /// The Graph client in force, for messages sent outside a turn (operator replies): the
    /// same client, so the same rate limit and pacing.
    pub fn graph(&self) -> crate::whatsapp::graph::GraphClient {
        self.generation.get().engines.graph.clone()
    }

    /// Build the engines for a new config without putting them in force: a reload that fails
    /// here (a prompt that does not compile, a bad tool) keeps the old config.
    pub fn prepare(&self, config: &Config) -> Result<Engines, EngineError> {
        self.factory
            .build(config, Some(&self.generation.get().engines))
    }

    /// Put `loaded` and the engines [`prepare`](Self::prepare) built from it in force for the
    /// next turns, as one value.
    pub fn install(&self, loaded: Arc<LoadedConfig>, engines: Engines) {
        self.generation.set(Generation { loaded, engines });
    }

    /// The config and engines a turn starting now would use.
    pub fn current(&self) -> Arc<Generation> {
        self.generation.get()
    }

    async fn answer(&self, turn: Turn) -> TurnOutcome {
        let current = self.generation.get();
        let (loaded, engines) = (&current.loaded, &current.engines);
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

        let template = &channel.window.reopen_template;
        let sender = Sender {
            graph: &engines.graph,
            store: &self.store,
            metrics: &self.metrics,
            clock: &self.clock,
            reopen_template: template.is_set().then(|| OutgoingMessage::Template {
                name: template.name.clone(),
                language: template.language.clone(),
                components: template.components.clone(),
            }),
        };
        let last_customer_at = deliver::turn_last_customer_at(&turn);
        // What earlier turns held for the window goes first: the customer wrote again.
        if let Some(outcome) = self.send_held(&sender, &turn, last_customer_at).await {
            return outcome;
        }

        // A reply saved by an earlier attempt is sent as it was: never generate a second one.
        // A first attempt has none (the turn was created by its claim).
        let saved = if turn.attempt == 0 {
            Ok(None)
        } else {
            self.store.load_reply(turn.id).await
        };
        let delivery = Delivery {
            key: turn.id,
            lane: &turn.lane,
            quote: Some(turn.last_message().message_id.as_str()),
            last_customer_at,
        };
        let delivered = match saved {
            Ok(Some(parts)) => sender.send_parts(&delivery, parts).await,
            Ok(None) => {
                let typing = typing::start(&engines.graph, &turn);
                let (sends, text) = match self
                    .generate(&turn, &loaded.config, engines, &agent_name)
                    .await
                {
                    Generated::Reply { sends, text } => (sends, text),
                    Generated::Nothing => return TurnOutcome::Done, // reactions only, say
                    Generated::NoModelAnswered { reason } => {
                        // The customer hears error_reply; the turn is recorded as failed so
                        // operators see the outage (inbox, retry, metrics, alert).
                        return error_reply::send_error_reply(
                            &sender,
                            &turn,
                            &channel.error_reply,
                            reason,
                        )
                        .await;
                    }
                };
                let messages = self.reply_messages(&turn, sends, &text);
                if messages.is_empty() {
                    return TurnOutcome::Done;
                }
                // The indicator stops once the reply is ready, before it goes out.
                drop(typing);
                // Saved, and its first part marked `sending` in the same commit.
                match sender.save_and_send(&delivery, messages).await {
                    Ok(delivered) => delivered,
                    Err(e) => return retry_later(format!("cannot save the reply: {e}")),
                }
            }
            Err(e) => return retry_later(format!("cannot read the saved reply: {e}")),
        };
        if let Some(handoff) = &self.handoff {
            if let Delivered::Refused(refusal) = delivered {
                // Committed by another replica and not yet in this one's mirror: look now.
                tracing::info!(turn_id = turn.id, reason = %refusal, "turn stopped before its reply went out");
                handoff.sync_soon();
                return delivered.into_turn_outcome();
            }
            if matches!(
                delivered,
                Delivered::Held {
                    template_queued: true
                }
            ) {
                handoff.wake_outbox();
            }
            handoff.agent_replied(&turn.lane);
        }
        delivered.into_turn_outcome()
    }

    /// The turn's reply as messages, in the order they go out: what the tools sent (a
    /// reaction names the turn's last message), then the text, formatted and split.
    fn reply_messages(
        &self,
        turn: &Turn,
        sends: Vec<OutgoingMessage>,
        text: &str,
    ) -> Vec<OutgoingMessage> {
        let mut messages: Vec<OutgoingMessage> = sends
            .into_iter()
            .map(|message| match message {
                OutgoingMessage::Reaction { message_id, emoji } if message_id.is_empty() => {
                    OutgoingMessage::Reaction {
                        message_id: turn.last_message().message_id.clone(),
                        emoji,
                    }
                }
                other => other,
            })
            .collect();
        for sent in &messages {
            self.metrics
                .tool_sends
                .get_or_create(&crate::metrics::ToolSendLabels {
                    r#type: sent.graph_type().to_owned(),
                })
                .inc();
        }
        messages.extend(
            split::split_message(&format::to_whatsapp(text), split::WHATSAPP_TEXT_LIMIT)
                .into_iter()
                .map(OutgoingMessage::text),
        );
        messages
    }

    /// Run the agent.
    async fn generate(
        &self,
        turn: &Turn,
        config: &Config,
        engines: &Engines,
        agent_name: &str,
    ) -> Generated {
        let error_reply = &config.whatsapp.error_reply;
        let speech = config
            .agents
            .get(agent_name)
            .and_then(|agent| agent.spec.transcription.as_ref())
            .map(|spec| inputs::Speech {
                transcriber: &self.transcriber,
                spec,
            });
        let parts = inputs::resolve(
            &engines.graph,
            &self.store,
            &self.metrics,
            turn,
            speech.as_ref(),
        )
        .await;
        if parts.is_empty() {
            return Generated::Nothing;
        }
        let last = turn.last_message();
        let request = TurnRequest {
            memory_key: memory::key_for_whatsapp(&turn.lane.user),
            turn_id: turn.id,
            contact_name: last.contact_name.clone(),
            phone: turn.lane.user.clone(),
            parts,
            // Remembered images are downloaded again through the same client (and limits).
            media: Some(Arc::new(inputs::GraphImages {
                graph: engines.graph.clone(),
                metrics: Arc::clone(&self.metrics),
            })),
        };
        let result = engines.agents.run(agent_name, request).await;
        if let (Some(asked), Some(handoff)) = (&result.handoff, &self.handoff) {
            return Generated::Reply {
                sends: Vec::new(),
                text: hand_to_person(handoff, &turn.lane, asked, &config.whatsapp).await,
            };
        }
        match result.outcome {
            TurnAnswer::Answered(text) if !text.trim().is_empty() || !result.sends.is_empty() => {
                Generated::Reply {
                    sends: result.sends,
                    text,
                }
            }
            TurnAnswer::Answered(_) => {
                tracing::warn!(
                    agent = agent_name,
                    "the model answered with empty text; sending error_reply"
                );
                Generated::Reply {
                    sends: Vec::new(),
                    text: error_reply.to_owned(),
                }
            }
            TurnAnswer::Failed { error } => Generated::NoModelAnswered { reason: error },
            TurnAnswer::Nothing => Generated::Nothing,
        }
    }
}

/// What the agent made of a turn.
enum Generated {
    /// The reply to send: what the tools sent, then the text (may be empty when they sent
    /// something).
    Reply {
        sends: Vec<OutgoingMessage>,
        text: String,
    },
    /// Nothing to answer (reactions only, say).
    Nothing,
    /// No model produced a reply: the customer gets `error_reply`, the turn is failed.
    NoModelAnswered { reason: String },
}

/// The agent called `handoff_to_human`: the conversation goes to a person and this turn's
/// reply is the notice (`handoff.message`, or `closed_message` outside `handoff.hours`).
async fn hand_to_person(
    handoff: &Handoff,
    lane: &crate::inbox::LaneKey,
    asked: &crate::agent::react::HandoffRequest,
    channel: &crate::config::WhatsAppChannel,
) -> String {
    if let Err(e) = handoff
        .take_over(lane, Trigger::Tool, asked.reason.clone(), Vec::new())
        .await
    {
        tracing::error!(error = %e, "the agent asked for a person but the handoff was not recorded");
    }
    handoff.notice(channel).join("\n\n")
}

fn retry_later(reason: String) -> TurnOutcome {
    tracing::error!(reason = %reason, "turn will be retried");
    TurnOutcome::RetryLater {
        after: crate::retry::TURN_AFTER_LOCAL_ERROR,
        reason,
    }
}

impl TurnHandler for Responder {
    fn handle(&self, turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(async move {
            let Some(handoff) = &self.handoff else {
                return self.answer(turn).await;
            };
            // The customer opted out after these messages: nothing more goes out.
            if handoff.silenced_by_opt_out(&turn) {
                return TurnOutcome::Done;
            }
            // A person has the conversation: no agent turn (its messages are closed unanswered).
            let Some(guard) = handoff.enter_turn(&turn.lane) else {
                return TurnOutcome::Done;
            };
            // Taken over while running: stop here; parts not yet sent never go out.
            let turn_id = turn.id;
            tokio::select! {
                biased;
                _ = guard.stopped() => {
                    tracing::info!(turn_id, "turn stopped: a person took the conversation over, or the customer opted out");
                    TurnOutcome::Done
                }
                outcome = self.answer(turn) => outcome,
            }
        })
    }
}
