//! Prometheus metrics, rendered in the Prometheus text format (0.0.4) at `/metrics`.
//!
//! One typed [`Metrics`] struct built on `prometheus-client`: a field per metric, label sets
//! as structs and enums, so a wrong metric name or label is a compile error. Every metric is
//! registered once in [`Metrics::new`], which also creates, with value 0, the series that the
//! alerts (`deploy/prometheus-alerts.yml`) and the dashboard use: `increase()` then sees the
//! first event after a restart, and panels show 0 instead of "No data". Each server (and each
//! test) owns its own `Metrics`; there is no global registry.
//!
//! Counters are registered without the `_total` suffix (the encoder adds it); help texts
//! without their final period (the encoder adds it).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The `Content-Type` of `/metrics` (the Prometheus text format, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

mod labels;

use labels::BUCKETS;
pub use labels::*;

/// A counter of seconds (fractional).
pub type SecondsCounter = Counter<f64, AtomicU64>;
/// A gauge of seconds (fractional).
pub type SecondsGauge = Gauge<f64, AtomicU64>;

/// Every metric wagate exports. The help texts are in [`Metrics::new`].
pub struct Metrics {
    registry: Registry,
    pub webhooks: Family<WebhookLabels, Counter>,
    pub messages_recorded: Family<RecordedLabels, Counter>,
    pub duplicates_dropped: Counter,
    pub statuses_recorded: Counter,
    pub dead_letters: Counter,
    pub lanes_active: Gauge,
    pub lanes_waiting: Gauge,
    /// Several replicas: hints sent to the others (`NOTIFY`) and heard from them (`LISTEN`).
    pub wake_up_hints_sent: Counter,
    pub wake_up_hints_received: Counter,
    pub inbox_open_messages: Gauge,
    pub inbox_oldest_pending_age_seconds: SecondsGauge,
    pub turns: Family<TurnLabels, Counter>,
    pub turns_claimed: Family<ClaimLabels, Counter>,
    pub turn_duration_seconds: Histogram,
    pub graph_sends: Family<SendLabels, Counter>,
    pub media_bytes: Family<MediaLabels, Counter>,
    pub model_calls: Family<ModelCallLabels, Counter>,
    pub model_call_duration_seconds: Family<ModelLabels, Histogram, Buckets>,
    pub tokens: Family<TokenLabels, Counter>,
    pub graph_retries: Family<RetryLabels, Counter>,
    pub rate_limiter_wait_seconds: SecondsCounter,
    pub config_reloads: Family<ReloadLabels, Counter>,
    pub config_generation: Gauge,
    pub transcriptions: Family<TranscriptionLabels, Counter>,
    pub transcription_audio_bytes: Family<ProviderLabels, Counter>,
    pub transcription_duration_seconds: Family<ProviderLabels, Histogram, Buckets>,
    pub handoffs: Family<HandoffLabels, Counter>,
    pub handoff_releases: Family<ReleaseLabels, Counter>,
    pub handoff_waiting_conversations: Gauge,
    pub handoff_oldest_wait_seconds: SecondsGauge,
    pub operator_replies: Counter,
    pub window_outcomes: Family<WindowLabels, Counter>,
    pub tool_sends: Family<ToolSendLabels, Counter>,
    pub opt_outs: Counter,
    pub opt_resumes: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, and the series alerts and dashboards read created with 0.
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            webhooks: Family::default(),
            messages_recorded: Family::default(),
            duplicates_dropped: Counter::default(),
            statuses_recorded: Counter::default(),
            dead_letters: Counter::default(),
            lanes_active: Gauge::default(),
            lanes_waiting: Gauge::default(),
            wake_up_hints_sent: Counter::default(),
            wake_up_hints_received: Counter::default(),
            inbox_open_messages: Gauge::default(),
            inbox_oldest_pending_age_seconds: SecondsGauge::default(),
            turns: Family::default(),
            turns_claimed: Family::default(),
            turn_duration_seconds: Histogram::new(BUCKETS),
            graph_sends: Family::default(),
            media_bytes: Family::default(),
            model_calls: Family::default(),
            model_call_duration_seconds: Family::new_with_constructor(Buckets),
            tokens: Family::default(),
            graph_retries: Family::default(),
            rate_limiter_wait_seconds: SecondsCounter::default(),
            config_reloads: Family::default(),
            config_generation: Gauge::default(),
            transcriptions: Family::default(),
            transcription_audio_bytes: Family::default(),
            transcription_duration_seconds: Family::new_with_constructor(Buckets),
            handoffs: Family::default(),
            handoff_releases: Family::default(),
            handoff_waiting_conversations: Gauge::default(),
            handoff_oldest_wait_seconds: SecondsGauge::default(),
            operator_replies: Counter::default(),
            window_outcomes: Family::default(),
            tool_sends: Family::default(),
            opt_outs: Counter::default(),
            opt_resumes: Counter::default(),
        };
        m.precreate();
        m.register()
    }

    /// The series an alert or a dashboard panel reads, created with 0: `increase()` needs a
    /// sample before the first event to see it.
    fn precreate(&self) {
        for &outcome in WebhookOutcome::ALL {
            drop(self.webhooks.get_or_create(&WebhookLabels { outcome }));
        }
        for &state in RecordedState::ALL {
            drop(
                self.messages_recorded
                    .get_or_create(&RecordedLabels { state }),
            );
        }
        for &outcome in TurnOutcome::ALL {
            drop(self.turns.get_or_create(&TurnLabels { outcome }));
        }
        for &by in ClaimedBy::ALL {
            drop(self.turns_claimed.get_or_create(&ClaimLabels { by }));
        }
        for &outcome in SendOutcome::ALL {
            drop(self.graph_sends.get_or_create(&SendLabels {
                outcome,
                code: String::new(),
            }));
        }
        // The access token rejected: its own alert and dashboard panel.
        drop(self.graph_sends.get_or_create(&SendLabels {
            outcome: SendOutcome::FinalError,
            code: "190".to_owned(),
        }));
        for &outcome in ReloadOutcome::ALL {
            drop(self.config_reloads.get_or_create(&ReloadLabels { outcome }));
        }
        for &trigger in HandoffTrigger::ALL {
            drop(self.handoffs.get_or_create(&HandoffLabels { trigger }));
        }
        for &trigger in ReleaseTrigger::ALL {
            drop(
                self.handoff_releases
                    .get_or_create(&ReleaseLabels { trigger }),
            );
        }
        for &outcome in WindowOutcome::ALL {
            drop(
                self.window_outcomes
                    .get_or_create(&WindowLabels { outcome }),
            );
        }
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "wagate_webhooks",
            "Webhook POSTs by outcome (accepted, unauthorized, bad_request, too_large, unavailable)",
            self.webhooks.clone(),
        );
        r.register(
            "wagate_messages_recorded",
            "Inbound messages newly recorded in the inbox, by state (pending, skipped)",
            self.messages_recorded.clone(),
        );
        r.register(
            "wagate_duplicates_dropped",
            "Inbound messages dropped because their id was already recorded",
            self.duplicates_dropped.clone(),
        );
        r.register(
            "wagate_statuses_recorded",
            "Delivery statuses received for outbound messages",
            self.statuses_recorded.clone(),
        );
        r.register(
            "wagate_dead_letters",
            "Webhook content kept as a dead letter because it was not understood",
            self.dead_letters.clone(),
        );
        r.register(
            "wagate_lanes_active",
            "Conversations with a running or waiting turn",
            self.lanes_active.clone(),
        );
        r.register(
            "wagate_lanes_waiting",
            "Conversations waiting for a free turn slot (lane queue depth)",
            self.lanes_waiting.clone(),
        );
        r.register(
            "wagate_replica_hints_sent",
            "Hints sent to the other replicas that work waits here without a free turn slot (PostgreSQL NOTIFY)",
            self.wake_up_hints_sent.clone(),
        );
        r.register(
            "wagate_replica_hints_received",
            "Hints heard from the other replicas that work waits (PostgreSQL LISTEN)",
            self.wake_up_hints_received.clone(),
        );
        r.register(
            "wagate_inbox_open_messages",
            "Messages recorded and not yet answered",
            self.inbox_open_messages.clone(),
        );
        r.register(
            "wagate_inbox_oldest_pending_age_seconds",
            "Age of the oldest unanswered message (0 when none)",
            self.inbox_oldest_pending_age_seconds.clone(),
        );
        r.register(
            "wagate_turns",
            "Turns by outcome (done, failed, retry_later)",
            self.turns.clone(),
        );
        r.register(
            "wagate_turns_claimed",
            "Turns by the commit that claimed them (webhook, close, dispatcher)",
            self.turns_claimed.clone(),
        );
        r.register(
            "wagate_turn_duration_seconds",
            "Wall time of one turn, from claim to outcome",
            self.turn_duration_seconds.clone(),
        );
        r.register(
            "wagate_graph_sends",
            "Reply parts sent to the Graph API by outcome (accepted, retry_later, final_error) and Meta error code",
            self.graph_sends.clone(),
        );
        r.register(
            "wagate_media_bytes",
            "Inbound media bytes downloaded, by kind",
            self.media_bytes.clone(),
        );
        r.register(
            "wagate_model_calls",
            "Model calls by provider, model and outcome (ok, error, timeout)",
            self.model_calls.clone(),
        );
        r.register(
            "wagate_model_call_duration_seconds",
            "Wall time of one model call, by provider and model",
            self.model_call_duration_seconds.clone(),
        );
        r.register(
            "wagate_tokens",
            "Tokens by provider, model and kind (prompt, completion)",
            self.tokens.clone(),
        );
        r.register(
            "wagate_graph_retries",
            "Graph API calls retried, by operation and Meta error code (empty: HTTP or transport error)",
            self.graph_retries.clone(),
        );
        r.register(
            "wagate_rate_limiter_wait_seconds",
            "Seconds sends spent waiting for the channel rate limit and per-user pacing",
            self.rate_limiter_wait_seconds.clone(),
        );
        r.register(
            "wagate_config_reloads",
            "Config reloads by outcome (applied, rejected: the previous config stayed in force)",
            self.config_reloads.clone(),
        );
        r.register(
            "wagate_config_generation",
            "Generation of the config in force (1 at start, +1 per reload)",
            self.config_generation.clone(),
        );
        r.register(
            "wagate_transcriptions",
            "Audio transcriptions by provider and outcome (ok, error, timeout, too_long)",
            self.transcriptions.clone(),
        );
        r.register(
            "wagate_transcription_audio_bytes",
            "Bytes of audio transcribed successfully, by provider",
            self.transcription_audio_bytes.clone(),
        );
        r.register(
            "wagate_transcription_duration_seconds",
            "Wall time of one transcription upload, until the answer or the timeout, by provider",
            self.transcription_duration_seconds.clone(),
        );
        r.register(
            "wagate_handoffs",
            "Conversations handed to a person, by trigger (operator, keyword, tool)",
            self.handoffs.clone(),
        );
        r.register(
            "wagate_handoff_releases",
            "Conversations given back to the agent, by trigger (operator, timeout)",
            self.handoff_releases.clone(),
        );
        r.register(
            "wagate_handoff_waiting_conversations",
            "Conversations handed over by a keyword or the agent with no operator reply yet (waiting for a person)",
            self.handoff_waiting_conversations.clone(),
        );
        r.register(
            "wagate_handoff_oldest_wait_seconds",
            "How long the longest-waiting conversation has waited for a person (0 when none)",
            self.handoff_oldest_wait_seconds.clone(),
        );
        r.register(
            "wagate_operator_replies",
            "Replies written by an operator (API or console) and queued for sending",
            self.operator_replies.clone(),
        );
        r.register(
            "wagate_window_outcomes",
            "Messages that met a closed 24-hour window, by outcome (held behind the reopen template, failed)",
            self.window_outcomes.clone(),
        );
        r.register(
            "wagate_tool_sends",
            "WhatsApp messages the agent's sending tools produced (saved to send), by Meta type (interactive, image, document, location, reaction)",
            self.tool_sends.clone(),
        );
        r.register(
            "wagate_opt_outs",
            "Customers who opted out (an opt_out keyword, or a marketing stop in WhatsApp)",
            self.opt_outs.clone(),
        );
        r.register(
            "wagate_opt_resumes",
            "Customers who opted back in (a resume keyword, or a marketing resume in WhatsApp)",
            self.opt_resumes.clone(),
        );
        self
    }

    /// One webhook POST answered.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhooks
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }

    /// One reply part sent (or refused); `code` is Meta's error code, empty when none.
    pub fn graph_send(&self, outcome: SendOutcome, code: &str) {
        self.graph_sends
            .get_or_create(&SendLabels {
                outcome,
                code: code.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text format (0.0.4): HELP, TYPE and the series of every metric that has
    /// one (a family whose labels are not known in advance is left out until its first event).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_help_type_and_labels() {
        let m = Metrics::new();
        m.webhook(WebhookOutcome::Accepted);
        m.webhook(WebhookOutcome::Accepted);
        m.webhook(WebhookOutcome::Unauthorized);
        let text = m.render();
        assert!(text.contains("# TYPE wagate_webhooks_total counter"));
        assert!(text.contains("wagate_webhooks_total{outcome=\"accepted\"} 2"));
        assert!(text.contains("wagate_webhooks_total{outcome=\"unauthorized\"} 1"));
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let m = Metrics::new();
        m.turn_duration_seconds.observe(0.003);
        m.turn_duration_seconds.observe(0.2);
        let text = m.render();
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("wagate_turn_duration_seconds_count 2"));
    }

    #[test]
    fn help_texts_end_with_one_period() {
        let text = Metrics::new().render();
        assert!(text
            .contains("# HELP wagate_turns_total Turns by outcome (done, failed, retry_later).\n"));
        assert!(!text.contains(".."));
    }

    #[test]
    fn the_series_alerts_read_exist_with_zero_before_any_event() {
        let text = Metrics::new().render();
        for line in [
            "wagate_webhooks_total{outcome=\"unauthorized\"} 0",
            "wagate_webhooks_total{outcome=\"too_large\"} 0",
            "wagate_turns_total{outcome=\"failed\"} 0",
            "wagate_graph_sends_total{outcome=\"final_error\",code=\"\"} 0",
            "wagate_graph_sends_total{outcome=\"accepted\",code=\"\"} 0",
            "wagate_graph_sends_total{outcome=\"final_error\",code=\"190\"} 0",
            "wagate_config_reloads_total{outcome=\"rejected\"} 0",
            "wagate_handoffs_total{trigger=\"keyword\"} 0",
            "wagate_dead_letters_total 0",
            "wagate_duplicates_dropped_total 0",
            "wagate_opt_outs_total 0",
            "wagate_turn_duration_seconds_count 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
