//! PII redaction and the guardrail rules on arbitrary text: never panics, the text is untouched
//! where nothing was found, a `max_length` rule is honoured, and redaction is stable (running
//! it on its own output finds nothing more).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wagate::config::{GuardrailRule, PiiAction};
use wagate::guardrails::{apply, apply_with_report, redact_pii};

#[derive(Debug, Arbitrary)]
enum Rule {
    Pii,
    MaxLength(u16),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    rules: Vec<Rule>,
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let redacted = redact_pii(input.text);
    if redacted.kinds.is_empty() {
        assert_eq!(redacted.text, input.text);
    }
    let twice = redact_pii(&redacted.text);
    assert!(twice.kinds.is_empty(), "{:?} left {:?}", input.text, twice);

    let rules: Vec<GuardrailRule> = input
        .rules
        .iter()
        .map(|r| match r {
            Rule::Pii => GuardrailRule::PiiDetection {
                action: PiiAction::Redact,
            },
            Rule::MaxLength(n) => GuardrailRule::MaxLength {
                max_chars: usize::from(*n),
            },
        })
        .collect();
    let guarded = apply_with_report(&rules, input.text);
    assert_eq!(apply(&rules, input.text), guarded.text);
    // A `max_length` rule that comes last bounds the text (an earlier one may be undone by a
    // redaction token longer than what it replaces).
    if let Some(GuardrailRule::MaxLength { max_chars }) = rules.last() {
        assert!(guarded.text.chars().count() <= *max_chars);
    }
});
