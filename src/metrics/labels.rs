//! Label sets of the metrics: fixed values as enums (a wrong one does not compile), free ones
//! (a Meta error code, a model name) as strings; and the histograms' buckets.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::MetricConstructor;
use prometheus_client::metrics::histogram::Histogram;
use std::fmt::Write as _;

/// Upper bounds of the latency histograms, in seconds.
pub(super) const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// A label value from a fixed set: an enum with the text each value renders as.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in the order of the help text.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_values!(
    /// `wagate_webhooks_total{outcome}`.
    WebhookOutcome {
        Accepted => "accepted",
        Unauthorized => "unauthorized",
        BadRequest => "bad_request",
        TooLarge => "too_large",
        Unavailable => "unavailable",
    }
);
label_values!(
    /// `wagate_messages_recorded_total{state}`.
    RecordedState { Pending => "pending", Skipped => "skipped" }
);
label_values!(
    /// `wagate_turns_total{outcome}`.
    TurnOutcome { Done => "done", Failed => "failed", RetryLater => "retry_later" }
);
label_values!(
    /// `wagate_turns_claimed_total{by}`: which commit claimed a turn. `webhook` and `close`
    /// share a commit with work done anyway; `dispatcher` is a claim of its own (the turn's
    /// messages were recorded first and wait for a slot or a look at the store).
    ClaimedBy { Webhook => "webhook", Close => "close", Dispatcher => "dispatcher" }
);
label_values!(
    /// `wagate_graph_sends_total{outcome}`.
    SendOutcome { Accepted => "accepted", RetryLater => "retry_later", FinalError => "final_error" }
);
label_values!(
    /// `wagate_model_calls_total{outcome}`.
    CallOutcome { Ok => "ok", Error => "error", Timeout => "timeout" }
);
label_values!(
    /// `wagate_tokens_total{kind}`.
    TokenKind { Prompt => "prompt", Completion => "completion" }
);
label_values!(
    /// `wagate_config_reloads_total{outcome}`.
    ReloadOutcome { Applied => "applied", Rejected => "rejected" }
);
label_values!(
    /// `wagate_transcriptions_total{outcome}`.
    TranscriptionOutcome {
        Ok => "ok",
        Error => "error",
        Timeout => "timeout",
        TooLong => "too_long",
    }
);
label_values!(
    /// `wagate_handoffs_total{trigger}`.
    HandoffTrigger { Operator => "operator", Keyword => "keyword", Tool => "tool" }
);
label_values!(
    /// `wagate_handoff_releases_total{trigger}`.
    ReleaseTrigger { Operator => "operator", Timeout => "timeout" }
);
label_values!(
    /// `wagate_window_outcomes_total{outcome}`.
    WindowOutcome { Held => "held", Failed => "failed" }
);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    pub outcome: WebhookOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RecordedLabels {
    pub state: RecordedState,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TurnLabels {
    pub outcome: TurnOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClaimLabels {
    pub by: ClaimedBy,
}

/// A reply part sent: the outcome and Meta's error code (empty when none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SendLabels {
    pub outcome: SendOutcome,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MediaLabels {
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModelLabels {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModelCallLabels {
    pub provider: String,
    pub model: String,
    pub outcome: CallOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TokenLabels {
    pub provider: String,
    pub model: String,
    pub kind: TokenKind,
}

/// A Graph API call retried: the operation and Meta's error code (empty: HTTP or transport).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RetryLabels {
    pub operation: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: ReloadOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TranscriptionLabels {
    pub provider: String,
    pub outcome: TranscriptionOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HandoffLabels {
    pub trigger: HandoffTrigger,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReleaseLabels {
    pub trigger: ReleaseTrigger,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WindowLabels {
    pub outcome: WindowOutcome,
}

/// `wagate_tool_sends_total{type}`: Meta's message type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ToolSendLabels {
    pub r#type: String,
}

/// Builds the latency histograms of a family, all with [`BUCKETS`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(BUCKETS)
    }
}
