//! Guardrails on the text going into and coming out of the model: PII redaction and length
//! limits, applied in the order the agent file lists them.

mod checksums;
mod length;
mod pii;

pub use length::truncate_chars;
pub use pii::{redact_pii, PiiKind, Redacted};

use crate::config::agent::{GuardrailRule, PiiAction};

/// The outcome of [`apply_with_report`]: the text, and what the rules changed (for logs/metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// The text after every rule.
    pub text: String,
    /// Every redaction made, in order of appearance.
    pub redactions: Vec<PiiKind>,
    /// Whether a `max_length` rule cut the text.
    pub truncated: bool,
}

/// Applies `rules` to `text` in the order listed and returns the resulting text.
pub fn apply(rules: &[GuardrailRule], text: &str) -> String {
    apply_with_report(rules, text).text
}

/// Applies `rules` to `text` in the order listed, reporting what each rule changed.
pub fn apply_with_report(rules: &[GuardrailRule], text: &str) -> Guarded {
    let mut guarded = Guarded {
        text: text.to_owned(),
        redactions: Vec::new(),
        truncated: false,
    };
    for rule in rules {
        match rule {
            GuardrailRule::PiiDetection {
                action: PiiAction::Redact,
            } => {
                let redacted = redact_pii(&guarded.text);
                guarded.text = redacted.text;
                guarded.redactions.extend(redacted.kinds);
            }
            GuardrailRule::MaxLength { max_chars } => {
                let cut_len = truncate_chars(&guarded.text, *max_chars).len();
                if cut_len < guarded.text.len() {
                    guarded.text.truncate(cut_len);
                    guarded.truncated = true;
                }
            }
        }
    }
    guarded
}

#[cfg(test)]
mod tests;
