//! (in progress)
//!
//! TEMPORARY STUB written on branch `turn` so the agent runtime compiles before the real
//! guardrails module (branch `text`) lands. The lead resolves the merge conflict by taking the
//! real module; only the signature below is relied on.

use crate::config::GuardrailRule;

/// Applies `rules` in order to `text`. STUB: returns the text unchanged.
pub fn apply(_rules: &[GuardrailRule], text: &str) -> String {
    text.to_string()
}
