//! The model router: tries an agent's candidate models in order until one answers.
//!
//! Candidates are `spec.model.primary` then `spec.model.fallback`, kept in a `Vec` so more can
//! be registered later. Strategies:
//! - `capability_match` (the default): a request with an image goes only to candidates with
//!   vision; the rest in registration order.
//! - `registration_order`, `cost_optimized`, `latency_optimized`, `quality_first`,
//!   `round_robin`: accepted so reference-platform files load, and executed as plain
//!   registration order (primary, then fallback) with no capability filter. With two candidates
//!   and no cost or latency data, that is what they reduce to.
//!
//! Any failure (error status, timeout, unreachable server, bad reply) hands the request to the
//! next candidate. Each candidate has a circuit breaker so a dead server is skipped for a
//! cool-down instead of costing every turn its timeout.
//!
//! A candidate whose configured `capabilities` list omits `tools` is sent the request without
//! tools (it then answers in text), rather than being skipped.

use super::breaker::{Breaker, BreakerPolicy};
use super::budget::{self, DEFAULT_CONTEXT_WINDOW, SAFE_WITHOUT_ASKING};
use super::capabilities::{capabilities_of, Capabilities};
use super::discovery;
use super::error::ProviderError;
use super::provider;
use super::types::{ChatRequest, ChatResponse};
use crate::config::{ModelEndpoint, ModelSpec, RoutingStrategy};
use crate::metrics::{CallOutcome, Metrics, ModelCallLabels, ModelLabels, TokenKind, TokenLabels};
use crate::text::display_url;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bound on asking a server its context window (once per candidate and config load).
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a request the server found too long is sent again, each time with half
/// the history (or, with none left, half the budget).
const MAX_SHRINKS: u32 = 3;

/// Routes chat requests over an agent's candidate models. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Router {
    candidates: Vec<Candidate>,
    strategy: RoutingStrategy,
    http: reqwest::Client,
    /// Where model calls are counted: a registry of its own until [`Router::observed_by`].
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Candidate {
    endpoint: ModelEndpoint,
    /// `provider/model`, as in logs and errors.
    label: String,
    capabilities: Capabilities,
    breaker: Breaker,
    window: ContextWindow,
}

/// A candidate's context window: configured, or learned from the server (asked, or reported
/// in a context-exceeded answer).
#[derive(Debug)]
struct ContextWindow {
    /// `context_window`, else `parameters.num_ctx`, from the agent file.
    configured: Option<u32>,
    learned: Mutex<Option<u32>>,
}

/// A model's answer plus the candidates that failed (or were skipped) before it, for logging.
#[derive(Debug)]
pub struct ChatOutcome {
    pub response: ChatResponse,
    /// `(provider/model, error)` for each candidate tried or skipped before the one that answered.
    pub attempts: Vec<(String, String)>,
}

/// No candidate produced an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouterError {
    /// Every eligible candidate failed or was skipped by its circuit breaker.
    #[error("no model answered: {}", describe(attempts))]
    NoCandidate { attempts: Vec<(String, String)> },
    /// The request carries an image and routing found no candidate with vision.
    #[error(
        "the message has an image but none of this agent's models has vision ({}); add \
         `capabilities: [vision]` to a model that accepts images, or add a vision model such as \
         llava or gemma3 as primary or fallback",
        models.join(", ")
    )]
    NoVisionCandidate { models: Vec<String> },
}

impl RouterError {
    /// `(provider/model, error)` for every candidate tried, for the failure log line.
    pub fn attempts(&self) -> &[(String, String)] {
        match self {
            RouterError::NoCandidate { attempts } => attempts,
            RouterError::NoVisionCandidate { .. } => &[],
        }
    }
}

fn describe(attempts: &[(String, String)]) -> String {
    attempts
        .iter()
        .map(|(model, error)| {
            // Router attempts read "at http://...: error"; others are plain errors.
            if error.starts_with("at ") {
                format!("{model} {error}")
            } else {
                format!("{model}: {error}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn label_of(endpoint: &ModelEndpoint) -> String {
    let provider = endpoint.provider.name();
    format!("{provider}/{}", endpoint.model)
}

impl Router {
    /// A router over `spec`'s candidates with the default breaker (3 failures, 30 s cool-down).
    pub fn new(spec: &ModelSpec, http: reqwest::Client) -> Router {
        Router::with_breaker_policy(spec, http, BreakerPolicy::default())
    }

    /// A router with a chosen breaker policy (tests use a short cool-down).
    pub fn with_breaker_policy(
        spec: &ModelSpec,
        http: reqwest::Client,
        policy: BreakerPolicy,
    ) -> Router {
        let candidates = spec
            .candidates()
            .into_iter()
            .map(|endpoint| Candidate {
                endpoint: endpoint.clone(),
                label: label_of(endpoint),
                capabilities: capabilities_of(endpoint),
                breaker: Breaker::new(policy),
                window: ContextWindow {
                    configured: endpoint.context_window.or_else(|| {
                        endpoint
                            .parameters
                            .get("num_ctx")
                            .and_then(|v| v.as_u64())
                            .and_then(|n| u32::try_from(n).ok())
                    }),
                    learned: Mutex::new(None),
                },
            })
            .collect();
        Router {
            candidates,
            strategy: spec.routing.strategy,
            http,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Count every model call in `metrics` (calls by outcome, latency, tokens).
    pub fn observed_by(mut self, metrics: Arc<Metrics>) -> Router {
        self.metrics = metrics;
        self
    }

    /// Whether a request carrying an image has a model that sees it: with `capability_match`
    /// any candidate with vision (images go only to those), otherwise every candidate.
    pub fn sees_images(&self) -> bool {
        let mut vision = self.candidates.iter().map(|c| c.capabilities.vision);
        if self.strategy == RoutingStrategy::CapabilityMatch {
            vision.any(|v| v)
        } else {
            vision.all(|v| v)
        }
    }

    /// `provider/model` of every candidate, in registration order.
    pub fn models(&self) -> Vec<String> {
        self.candidates.iter().map(|c| c.label.clone()).collect()
    }

    /// Sends `req` to the first candidate that answers; `response.model` names it.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, RouterError> {
        self.chat_with_attempts(req).await.map(|o| o.response)
    }

    /// As [`Router::chat`], also returning the candidates that failed before the answer.
    pub async fn chat_with_attempts(&self, req: &ChatRequest) -> Result<ChatOutcome, RouterError> {
        let needs_vision = self.strategy == RoutingStrategy::CapabilityMatch && req.has_images();
        let eligible: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| !needs_vision || c.capabilities.vision)
            .collect();
        if eligible.is_empty() {
            return Err(RouterError::NoVisionCandidate {
                models: self.models(),
            });
        }
        let mut attempts = Vec::new();
        for candidate in eligible {
            let permit = match candidate.breaker.admit() {
                Ok(permit) => permit,
                Err(skipped) => {
                    tracing::debug!(model = %candidate.label, %skipped, "model skipped");
                    attempts.push((candidate.label.clone(), skipped.to_string()));
                    continue;
                }
            };
            let started = Instant::now();
            let result = self.call_fitted(candidate, req).await;
            self.observe(candidate, &result, started.elapsed());
            match result {
                Ok(response) => {
                    permit.succeeded();
                    return Ok(ChatOutcome { response, attempts });
                }
                Err(error) => {
                    if error.is_request_problem() {
                        // The server answered: it is up. This request is the problem, and
                        // another conversation must not be refused for it.
                        permit.succeeded();
                    } else {
                        permit.failed();
                    }
                    tracing::warn!(model = %candidate.label, %error, "model call failed");
                    let at = display_url(&candidate.endpoint.endpoint);
                    let text = match error.hint(&candidate.endpoint) {
                        Some(hint) => format!("at {at}: {error} ({hint})"),
                        None => format!("at {at}: {error}"),
                    };
                    attempts.push((candidate.label.clone(), text));
                }
            }
        }
        Err(RouterError::NoCandidate { attempts })
    }
}

impl Router {
    /// One candidate's answer to `req`, fitted to its context window; a server that still
    /// finds the request too long gets it again with half the history, a few times at most.
    async fn call_fitted(
        &self,
        candidate: &Candidate,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let request = request_for(candidate, req);
        let mut window = self.window_for(candidate, &request).await;
        let mut max_history = None;
        let mut squeeze = 1;
        let mut shrinks = 0;
        loop {
            let result = match window {
                None => provider::call(&self.http, &candidate.endpoint, &request).await,
                Some(window) => {
                    let budget = budget::prompt_budget(&candidate.endpoint, window) / squeeze;
                    let fitted = budget::fit(&request, budget, max_history);
                    if fitted.history_left_out > 0 || fitted.cut {
                        tracing::debug!(
                            model = %candidate.label,
                            window,
                            history_kept = fitted.history_kept,
                            history_left_out = fitted.history_left_out,
                            cut = fitted.cut,
                            "request fitted to the context window"
                        );
                    }
                    max_history = Some(fitted.history_kept);
                    let mut sent = fitted.request.into_owned();
                    sent.context_window = Some(window);
                    provider::call(&self.http, &candidate.endpoint, &sent).await
                }
            };
            let Err(ProviderError::ContextExceeded { n_ctx, .. }) = &result else {
                return result;
            };
            if shrinks >= MAX_SHRINKS {
                return result;
            }
            shrinks += 1;
            tracing::warn!(
                model = %candidate.label,
                reported_window = ?n_ctx,
                "the server found the request longer than its context; sending less history"
            );
            if let Some(n) = *n_ctx {
                candidate.window.learn(n);
                window = Some(window.map_or(n, |w| w.min(n)));
            }
            let current = window.unwrap_or(SAFE_WITHOUT_ASKING);
            window = Some(current);
            match max_history {
                Some(kept) if kept > 0 => max_history = Some(kept / 2),
                Some(_) => squeeze *= 2,
                None => {}
            }
        }
    }

    /// The window to fit `request` to; `None` when it is small enough to send as it is and the
    /// window is not known (no need to ask the server).
    async fn window_for(&self, candidate: &Candidate, request: &ChatRequest) -> Option<u32> {
        if let Some(window) = candidate.window.known() {
            return Some(window);
        }
        let room = budget::reply_room(&candidate.endpoint, SAFE_WITHOUT_ASKING);
        if budget::estimate_request(request) + room <= SAFE_WITHOUT_ASKING as usize {
            return None;
        }
        match discovery::discover(&self.http, &candidate.endpoint, DISCOVERY_TIMEOUT).await {
            Ok(facts) => {
                let (window, source) = facts
                    .context_window
                    .unwrap_or((DEFAULT_CONTEXT_WINDOW, "the default"));
                tracing::info!(model = %candidate.label, window, source, "context window");
                candidate.window.learn(window);
                Some(window)
            }
            // Unreachable now: the call itself will say so; ask again next time.
            Err(_) => Some(DEFAULT_CONTEXT_WINDOW),
        }
    }

    fn observe(
        &self,
        candidate: &Candidate,
        result: &Result<ChatResponse, ProviderError>,
        took: Duration,
    ) {
        let metrics = &self.metrics;
        let provider = candidate.endpoint.provider.name();
        let model = candidate.endpoint.model.as_str();
        let outcome = match result {
            Ok(_) => CallOutcome::Ok,
            Err(ProviderError::Timeout { .. }) => CallOutcome::Timeout,
            Err(_) => CallOutcome::Error,
        };
        metrics
            .model_calls
            .get_or_create(&ModelCallLabels {
                provider: provider.to_owned(),
                model: model.to_owned(),
                outcome,
            })
            .inc();
        metrics
            .model_call_duration_seconds
            .get_or_create(&ModelLabels {
                provider: provider.to_owned(),
                model: model.to_owned(),
            })
            .observe(took.as_secs_f64());
        if let Ok(response) = result {
            let usage = response.usage;
            for (kind, tokens) in [
                (TokenKind::Prompt, usage.prompt_tokens),
                (TokenKind::Completion, usage.completion_tokens),
            ] {
                metrics
                    .tokens
                    .get_or_create(&TokenLabels {
                        provider: provider.to_owned(),
                        model: model.to_owned(),
                        kind,
                    })
                    .inc_by(tokens);
            }
        }
    }
}

/// The request as this candidate can take it: without tools when it is configured without them.
fn request_for<'a>(candidate: &Candidate, req: &'a ChatRequest) -> Cow<'a, ChatRequest> {
    if candidate.capabilities.tools || req.tools.is_empty() {
        Cow::Borrowed(req)
    } else {
        Cow::Owned(ChatRequest {
            tools: Vec::new(),
            ..req.clone()
        })
    }
}

impl ContextWindow {
    fn known(&self) -> Option<u32> {
        self.configured
            .or_else(|| *self.learned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Remembers what the server said; a configured window is the operator's word and stays.
    fn learn(&self, window: u32) {
        if self.configured.is_none() {
            let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
            *learned = Some(learned.map_or(window, |w| w.min(window)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_candidate_error_names_each_model_and_its_error() {
        let err = RouterError::NoCandidate {
            attempts: vec![
                ("ollama/llava:7b".into(), "timeout after 60s".into()),
                (
                    "ollama/llama3.1:8b".into(),
                    "HTTP 404: model not found".into(),
                ),
            ],
        };
        assert_eq!(
            err.to_string(),
            "no model answered: ollama/llava:7b: timeout after 60s; \
             ollama/llama3.1:8b: HTTP 404: model not found"
        );
        assert_eq!(err.attempts().len(), 2);
    }
}
