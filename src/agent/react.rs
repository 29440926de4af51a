//! The ReAct loop over native tool calls: ask the model; if it calls tools, run them, append the
//! assistant message and one result per call (in order), and ask again; stop at the first answer
//! without tool calls.
//!
//! At most `max_iterations` calls offer tools. When they are used up, one last call without
//! tools makes the model answer with what it has, so the user always gets a real reply and never
//! a canned "too many steps" text. That call says so in words (appended to the last tool
//! result, where every chat template accepts text): without it, small models write the next
//! tool call as their answer.
//!
//! A tool call written as text (see `text_calls`) is run like a native one when it names an
//! offered tool; otherwise, or on the last call, the turn fails rather than send it.
//!
//! Cancel-safe: no lock is held across an `.await`, so the caller's whole-turn
//! `tokio::time::timeout` may drop it at any point.

use super::text_calls;
use super::tools::ToolSet;
use crate::llm::{ChatMessage, ChatRequest, Role, Router, RouterError, Usage};
use std::ops::Range;

/// What the model is told on the last call of a turn whose tool calls are used up.
pub const LAST_CALL_NOTE: &str = "\n\n(No more tool calls are possible in this turn. Answer the \
     customer now, in plain text, with what you have. Do not write a tool call.)";

/// Why the loop produced no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReactError {
    /// No model answered.
    #[error("{0}")]
    Models(#[from] RouterError),
    /// The model's answer was a tool call written as text that could not be run.
    #[error(
        "the model wrote a tool call as its answer ({0}) instead of replying; it was not sent \
         to the customer"
    )]
    ToolCallAsText(String),
}

/// What one turn of the loop produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactOutcome {
    /// The model's final text (may be empty if the model said nothing).
    pub reply: String,
    /// Model calls made, the final tool-less one included.
    pub model_calls: u32,
    /// Names of the tools called, in order.
    pub tool_calls: Vec<String>,
    /// Tokens summed over every model call.
    pub usage: Usage,
    /// `provider/model` of every candidate tried for each call (failed ones too), in order.
    pub models: Vec<String>,
    /// The model called `handoff_to_human` (with this reason, if it gave one): the loop
    /// stopped there, and the conversation goes to a person.
    pub handoff: Option<HandoffRequest>,
    /// WhatsApp messages the sending builtins (`reply_buttons`, `send_image`...) produced, in
    /// call order: they go out before `reply`.
    pub sends: Vec<crate::whatsapp::graph::OutgoingMessage>,
}

/// The agent asked for a person (the builtin tool `handoff_to_human`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffRequest {
    /// Shown to the operator.
    pub reason: Option<String>,
}

/// Runs one turn over `messages` (system prompt, the new user message), with no history.
pub async fn run(
    router: &Router,
    tools: &ToolSet,
    messages: Vec<ChatMessage>,
    max_iterations: u32,
) -> Result<ReactOutcome, ReactError> {
    run_with_history(router, tools, messages, 0..0, max_iterations).await
}

/// Runs one turn over `messages` (system prompt, memory, the new user message), where
/// `history` says which messages are remembered ones that may be left out to fit the model's
/// context.
pub async fn run_with_history(
    router: &Router,
    tools: &ToolSet,
    mut messages: Vec<ChatMessage>,
    history: Range<usize>,
    max_iterations: u32,
) -> Result<ReactOutcome, ReactError> {
    let definitions = tools.definitions().await;
    let mut outcome = ReactOutcome {
        reply: String::new(),
        model_calls: 0,
        tool_calls: Vec::new(),
        usage: Usage::default(),
        models: Vec::new(),
        handoff: None,
        sends: Vec::new(),
    };
    let mut tool_rounds_left = max_iterations;
    loop {
        // Once the budget is spent, the model gets no tools and must answer in text.
        let offer_tools = tool_rounds_left > 0 && !definitions.is_empty();
        tool_rounds_left = tool_rounds_left.saturating_sub(1);
        let mut sent = messages.clone();
        if !offer_tools && !definitions.is_empty() {
            if let Some(last) = sent.last_mut().filter(|m| m.role == Role::Tool) {
                last.content.push_str(LAST_CALL_NOTE);
            }
        }
        let request = ChatRequest {
            messages: sent,
            tools: if offer_tools {
                definitions.clone()
            } else {
                Vec::new()
            },
            history: history.clone(),
            context_window: None,
        };
        let answered = router.chat_with_attempts(&request).await?;
        // Failed candidates count as tried too (a primary that fell back to the fallback).
        for (model, _) in &answered.attempts {
            outcome.models.push(model.clone());
        }
        let response = answered.response;
        outcome.model_calls += 1;
        outcome.usage.prompt_tokens += response.usage.prompt_tokens;
        outcome.usage.completion_tokens += response.usage.completion_tokens;
        outcome.models.push(response.model);
        let mut answer = response.message;
        if answer.tool_calls.is_empty() {
            if let Some(calls) = text_calls::parse(&answer.content) {
                let offered = calls
                    .iter()
                    .any(|c| definitions.iter().any(|d| d.name == c.name));
                let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
                if !(offer_tools && offered) {
                    return Err(ReactError::ToolCallAsText(names.join(", ")));
                }
                tracing::debug!(tools = %names.join(","), "a tool call written as text is run as a tool call");
                answer.tool_calls = calls;
                answer.content.clear();
            }
        }
        // A model that calls tools it was not offered on the last call still ends the turn.
        if answer.tool_calls.is_empty() || !offer_tools {
            outcome.reply = answer.content;
            return Ok(outcome);
        }
        let mut results = Vec::with_capacity(answer.tool_calls.len());
        for call in &answer.tool_calls {
            tracing::debug!(tool = %call.name, "tool call");
            let output = tools.run(call).await;
            outcome.tool_calls.push(call.name.clone());
            let mut text = output.text;
            if let Some(message) = output.send {
                // Small models repeat a call they think failed: the customer gets it once.
                if outcome.sends.contains(&message) {
                    text = "Already sent in this turn: the customer has it. Do not send it again."
                        .into();
                } else {
                    outcome.sends.push(message);
                }
            }
            if let Some(reason) = tools.handoff_reason(call) {
                outcome.handoff = Some(HandoffRequest { reason });
            }
            results.push(ChatMessage::tool_result(call, text));
        }
        // A person takes over: the customer gets the handoff notice, not more model text.
        if outcome.handoff.is_some() {
            return Ok(outcome);
        }
        messages.push(answer);
        messages.extend(results);
    }
}
