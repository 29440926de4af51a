//! The steps of one turn, in order. See the module documentation of `runtime` for the list.

use super::compiled::CompiledAgent;
use super::remembered::{self, MediaSource};
use super::{TurnAnswer, TurnRequest, TurnResult};
use crate::agent::input::{combine, ResolvedPart};
use crate::agent::prompt::{PromptError, PromptVars};
use crate::agent::react::{self, ReactError, ReactOutcome};
use crate::guardrails;
use crate::llm::ChatMessage;
use crate::memory::{unix_now, Memory, MemoryEntry};
use crate::whatsapp::graph::OutgoingMessage;

/// Why a turn produced no reply.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Models(ReactError),
    #[error("{0}")]
    Prompt(PromptError),
    #[error("the turn did not finish within its timeout of {0}s")]
    Timeout(u64),
    #[error("the model's reply was empty")]
    EmptyReply,
    /// The agent called `handoff_to_human`: no reply of its own.
    #[error("handed to a person")]
    HandedOff,
}

/// Runs one turn of `agent` for `request`.
pub(super) async fn run(
    agent: &CompiledAgent,
    memory: &Memory,
    request: TurnRequest,
) -> TurnResult {
    if request.parts.is_empty() {
        return TurnResult::with_outcome(TurnAnswer::Nothing);
    }
    // 1. Input guardrails, before the model and before memory.
    let parts = guard_parts(agent, request.parts);
    let user = combine(parts);
    // Images are shown again only to routing that can take them, and only when the new
    // message brings none of its own.
    let media = request
        .media
        .filter(|_| user.message.images.is_empty() && agent.router.sees_images());
    let vars = PromptVars::new(request.contact_name.as_deref(), &request.phone, &agent.name);

    // 2-4. Memory window, system prompt, ReAct loop: all inside the turn's timeout.
    let exchange = tokio::time::timeout(
        agent.timeout,
        converse(
            agent,
            memory,
            &request.memory_key,
            &vars,
            user.message,
            media.as_deref(),
        ),
    )
    .await
    .unwrap_or(Err(Failure::Timeout(agent.timeout.as_secs())));

    let mut result = TurnResult::with_outcome(TurnAnswer::Nothing);
    let reply = match exchange {
        Ok(outcome) => {
            result.models_tried = distinct(&outcome.models);
            result.model_calls = outcome.model_calls;
            result.tool_calls = outcome.tool_calls;
            result.usage = outcome.usage;
            result.handoff = outcome.handoff.clone();
            // 5. Output guardrails, before the reply leaves and before memory: on the text and
            // on what the sending tools say (bodies, captions).
            let reply = guardrails::apply(&agent.output_rules, &outcome.reply);
            let sends: Vec<OutgoingMessage> = outcome
                .sends
                .into_iter()
                .map(|m| guard_message(agent, m))
                .collect();
            // A model that sent buttons and then wrote the same question again says it once.
            let reply = if sends.iter().any(|m| m.main_text().trim() == reply.trim()) {
                String::new()
            } else {
                reply
            };
            if result.handoff.is_some() {
                Err(Failure::HandedOff)
            } else if reply.trim().is_empty() && sends.is_empty() {
                Err(Failure::EmptyReply)
            } else {
                result.sends = sends;
                Ok(reply)
            }
        }
        Err(failure) => {
            if let Failure::Models(ReactError::Models(error)) = &failure {
                result.models_tried = distinct_attempts(error, agent);
            }
            Err(failure)
        }
    };

    // 6. Memory: the user's side always, the reply only when there is one (what the tools
    // sent first, as the customer saw it in order).
    let mut entries = vec![MemoryEntry::user(user.memory_text, unix_now()).with_media(user.media)];
    match reply {
        Ok(reply) => {
            for sent in &result.sends {
                entries.push(MemoryEntry::assistant(sent.memory_text(), unix_now()));
            }
            if !reply.trim().is_empty() {
                entries.push(MemoryEntry::assistant(reply.clone(), unix_now()));
            }
            result.outcome = TurnAnswer::Answered(reply);
        }
        Err(Failure::HandedOff) => result.outcome = TurnAnswer::Nothing,
        Err(failure) => {
            // 7. The caller sends the channel's error_reply; the log says why.
            tracing::warn!(
                agent = %agent.name,
                models_tried = %result.models_tried.join(","),
                candidates = %agent.router.models().join(","),
                error = %failure,
                "turn_failed"
            );
            result.outcome = TurnAnswer::Failed {
                error: failure.to_string(),
            };
        }
    }
    if agent.memory.is_some() {
        if let Err(error) = memory
            .append(&request.memory_key, request.turn_id, &entries)
            .await
        {
            // The reply is still worth sending; the conversation only loses this turn.
            tracing::warn!(agent = %agent.name, %error, "memory_append_failed");
        }
    }
    result
}

/// The output rules on the free text of a message a tool sends (body, caption). Titles of
/// buttons and rows are left as they are: they come back verbatim when tapped.
fn guard_message(agent: &CompiledAgent, message: OutgoingMessage) -> OutgoingMessage {
    let rules = &agent.output_rules;
    if rules.is_empty() {
        return message;
    }
    let guard = |text: String| guardrails::apply(rules, &text);
    match message {
        OutgoingMessage::Buttons { body, buttons } => OutgoingMessage::Buttons {
            body: guard(body),
            buttons,
        },
        OutgoingMessage::List { body, button, rows } => OutgoingMessage::List {
            body: guard(body),
            button,
            rows,
        },
        OutgoingMessage::Image { link, caption } => OutgoingMessage::Image {
            link,
            caption: caption.map(guard),
        },
        OutgoingMessage::Document {
            link,
            caption,
            filename,
        } => OutgoingMessage::Document {
            link,
            caption: caption.map(guard),
            filename,
        },
        other => other,
    }
}

/// The input rules on every text part and every image caption.
fn guard_parts(agent: &CompiledAgent, parts: Vec<ResolvedPart>) -> Vec<ResolvedPart> {
    let rules = &agent.input_rules;
    if rules.is_empty() {
        return parts;
    }
    parts
        .into_iter()
        .map(|part| match part {
            ResolvedPart::Text(text) => ResolvedPart::Text(guardrails::apply(rules, &text)),
            ResolvedPart::Image {
                image,
                caption,
                media_id,
            } => ResolvedPart::Image {
                image,
                caption: caption.map(|c| guardrails::apply(rules, &c)),
                media_id,
            },
        })
        .collect()
}

/// Loads the memory window, renders the system prompt and runs the ReAct loop.
async fn converse(
    agent: &CompiledAgent,
    memory: &Memory,
    memory_key: &str,
    vars: &PromptVars,
    user_message: ChatMessage,
    media: Option<&dyn MediaSource>,
) -> Result<ReactOutcome, Failure> {
    let history = match agent.memory {
        Some(window) => match memory.load(memory_key, window.max_turns, window.ttl).await {
            Ok(history) => history,
            Err(error) => {
                // Answering without history beats not answering.
                tracing::warn!(agent = %agent.name, %error, "memory_load_failed");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let system = agent.prompt.render(vars).map_err(Failure::Prompt)?;
    let mut messages = Vec::with_capacity(history.len() + 2);
    // No system message at all when the prompt is empty: an empty one would replace the
    // default prompt an Ollama model ships with.
    if !system.trim().is_empty() {
        messages.push(ChatMessage::system(system));
    }
    let images = match media {
        Some(source) => remembered::fetch(source, &history, unix_now()).await,
        None => Vec::new(),
    };
    let remembered = messages.len()..messages.len() + history.len();
    messages.extend(history.iter().enumerate().map(|(i, entry)| {
        let mut message = entry.to_chat_message();
        if let Some((_, images)) = images.iter().find(|(at, _)| *at == i) {
            message.images = images.clone();
        }
        message
    }));
    messages.push(user_message);
    react::run_with_history(
        &agent.router,
        &agent.tools,
        messages,
        remembered,
        agent.max_iterations,
    )
    .await
    .map_err(Failure::Models)
}

/// Models in order of first use, each once.
fn distinct(models: &[String]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for model in models {
        if !seen.contains(model) {
            seen.push(model.clone());
        }
    }
    seen
}

/// The models a routing failure tried; all candidates when none was eligible.
fn distinct_attempts(error: &crate::llm::RouterError, agent: &CompiledAgent) -> Vec<String> {
    let attempts: Vec<String> = error.attempts().iter().map(|(m, _)| m.clone()).collect();
    if attempts.is_empty() {
        agent.router.models()
    } else {
        distinct(&attempts)
    }
}
