//! Redaction never leaves a Luhn-valid card number or an e-mail address in its output.

use proptest::prelude::*;
use wagate::config::{GuardrailRule, PiiAction};
use wagate::guardrails::{apply, redact_pii};

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            match (i % 2 == 1, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// A Luhn-valid card number of 13 to 19 digits: its digits and how it is written.
fn card() -> impl Strategy<Value = (Vec<u8>, String)> {
    (
        prop::collection::vec(0u8..10, 12..=18),
        0usize..4,
        any::<bool>(),
    )
        .prop_map(|(mut digits, style, dash)| {
            let check = (0..10u8)
                .find(|c| luhn_valid(&[digits.as_slice(), &[*c]].concat()))
                .unwrap_or(0);
            digits.push(check);
            let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let sep = if dash { "-" } else { " " };
            let written = match style {
                // 3782 822463 10005, the American Express grouping.
                1 if digits.len() == 15 => {
                    format!("{}{sep}{}{sep}{}", &text[..4], &text[4..10], &text[10..])
                }
                // 4111 1111 1111 1111, and the shorter or longer remainder group.
                1 | 2 => {
                    let mut groups: Vec<&str> = text
                        .as_bytes()
                        .chunks(4)
                        .map(|c| std::str::from_utf8(c).unwrap_or_default())
                        .collect();
                    // 19 digits print as 4-4-4-4-3, the longest shape a card is written in.
                    if groups.len() == 5 && groups[4].is_empty() {
                        groups.pop();
                    }
                    groups.join(sep)
                }
                _ => text,
            };
            (digits, written)
        })
}

fn email() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9][A-Za-z0-9._%+-]{0,15}",
        prop::collection::vec("[A-Za-z0-9][A-Za-z0-9-]{0,10}", 1..3),
        "[A-Za-z]{2,6}",
    )
        .prop_map(|(local, labels, tld)| format!("{local}@{}.{tld}", labels.join(".")))
}

/// Words without `@`: the only `@` in a generated text is an e-mail's.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => "[a-zA-Z]{1,10}",
        2 => "[a-zA-Z]{1,8}[.,!?:;]",
        1 => "[0-9]{1,3}",
        1 => "\\PC{1,6}".prop_filter("no @", |w| !w.contains('@')),
        1 => prop::sample::select(vec!["(", ")", "<", ">", "\"", "card:", "mail:", "\n"])
            .prop_map(str::to_owned),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Word(String),
    Card(Vec<u8>, String),
    Email(String),
}

/// A generated text, with the card numbers (as digits) and e-mail addresses it holds.
#[derive(Debug, Clone)]
struct Sample {
    text: String,
    cards: Vec<Vec<u8>>,
    emails: Vec<String>,
}

fn sample() -> impl Strategy<Value = Sample> {
    let piece = prop_oneof![
        6 => word().prop_map(Piece::Word),
        1 => card().prop_map(|(d, w)| Piece::Card(d, w)),
        1 => email().prop_map(Piece::Email),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| {
        let (mut cards, mut emails) = (Vec::new(), Vec::new());
        let words: Vec<String> = pieces
            .into_iter()
            .map(|p| match p {
                Piece::Word(w) => w,
                Piece::Email(address) => {
                    emails.push(address.clone());
                    address
                }
                Piece::Card(digits, written) => {
                    cards.push(digits);
                    written
                }
            })
            .collect();
        Sample {
            text: words.join(" "),
            cards,
            emails,
        }
    })
}

/// Runs of ASCII digits joined by single spaces or dashes, as digit lists.
fn digit_runs(text: &str) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            current.push(b - b'0');
            continue;
        }
        let joins = matches!(b, b' ' | b'-')
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !joins && !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

fn ascii_digits(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

fn assert_no_card_or_email(output: &str, cards: &[Vec<u8>]) -> Result<(), TestCaseError> {
    prop_assert!(
        !output.contains('@'),
        "an e-mail address is left in {:?}",
        output
    );
    for run in digit_runs(output) {
        let looks_like_a_card = (13..=19).contains(&run.len()) && luhn_valid(&run);
        prop_assert!(!looks_like_a_card, "a card number is left in {:?}", output);
    }
    let all_digits = ascii_digits(output);
    for card in cards {
        let left = all_digits.windows(card.len()).any(|w| w == card.as_slice());
        prop_assert!(!left, "the digits of a card are left in {:?}", output);
    }
    Ok(())
}

fn pii_rule() -> GuardrailRule {
    GuardrailRule::PiiDetection {
        action: PiiAction::Redact,
    }
}

proptest! {
    #![proptest_config(super::cases(400))]

    #[test]
    fn redaction_leaves_no_card_number_or_email_address(sample in sample()) {
        let redacted = redact_pii(&sample.text);
        assert_no_card_or_email(&redacted.text, &sample.cards)?;
        prop_assert_eq!(redacted.kinds.is_empty(), redacted.text == sample.text);
    }

    #[test]
    fn the_pii_rule_leaves_none_whatever_the_length_limit_around_it(
        sample in sample(),
        max_chars in 0usize..400,
        limit_first in any::<bool>(),
    ) {
        let limit = GuardrailRule::MaxLength { max_chars };
        let rules = if limit_first { [limit, pii_rule()] } else { [pii_rule(), limit] };
        let guarded = apply(&rules, &sample.text);
        // A limit applied first may cut an address or a card short, leaving a fragment that
        // is no longer one; a whole one must never pass.
        for address in &sample.emails {
            prop_assert!(!guarded.contains(address.as_str()), "{} left in {:?}", address, guarded);
        }
        let digits = ascii_digits(&guarded);
        for card in &sample.cards {
            let left = digits.windows(card.len()).any(|w| w == card.as_slice());
            prop_assert!(!left, "the digits of a card are left in {:?}", guarded);
        }
        if !limit_first {
            assert_no_card_or_email(&guarded, &sample.cards)?;
        }
    }
}

#[test]
fn the_card_generator_writes_luhn_valid_numbers() {
    assert!(luhn_valid(&[
        4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    ]));
    assert!(!luhn_valid(&[
        4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2
    ]));
    let card = vec![4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    assert_eq!(
        digit_runs("a 4111 1111-1111 1111 b 12"),
        vec![card, vec![1, 2]]
    );
}
