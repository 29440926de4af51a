//! PII redaction: e-mail addresses, phone numbers, payment cards, US social security numbers and
//! IBANs are replaced by `[REDACTED_<KIND>]`.
//!
//! One combined regex finds candidates in a single pass (a DFA: no backtracking, linear time);
//! each candidate is then validated in code (Luhn, mod-97, SSN ranges, digit counts), because a
//! regex alone cannot tell a card from any 16-digit order number. Alternatives are ordered so that,
//! at the same starting point, a card is decided before a phone number.

use super::checksums::{iban_valid, luhn_valid};
use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// The kinds of personal data that are redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number, international (`+44 20 7946 0958`) or national (`(415) 555-0100`).
    Phone,
    /// A payment card number that passes the Luhn check.
    Card,
    /// A US social security number (`123-45-6789`).
    Ssn,
    /// An IBAN whose mod-97 checksum holds.
    Iban,
}

impl PiiKind {
    /// The upper-case name used in the redaction token, e.g. `CARD`.
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Card => "CARD",
            PiiKind::Ssn => "SSN",
            PiiKind::Iban => "IBAN",
        }
    }

    /// The token that replaces a value of this kind, e.g. `[REDACTED_CARD]`.
    pub fn token(self) -> &'static str {
        match self {
            PiiKind::Email => "[REDACTED_EMAIL]",
            PiiKind::Phone => "[REDACTED_PHONE]",
            PiiKind::Card => "[REDACTED_CARD]",
            PiiKind::Ssn => "[REDACTED_SSN]",
            PiiKind::Iban => "[REDACTED_IBAN]",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A text with its personal data replaced, and what was replaced, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The text with each value replaced by its token.
    pub text: String,
    /// The kind of each replaced value, in order of appearance.
    pub kinds: Vec<PiiKind>,
}

// Each kind's pattern is a macro so that `concat!` can assemble the combined pattern from them.
// `(?-u:\b)` is an ASCII word boundary: the lazy DFA handles it on any input, whereas a Unicode
// `\b` makes the engine fall back to a slower one as soon as the text holds a non-ASCII char.
macro_rules! email_pattern {
    // user.name+tag@example.co.uk
    () => {
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    };
}
macro_rules! iban_pattern {
    // DE89 3704 0044 0532 0130 00 / DE89370400440532013000
    () => {
        r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}(?-u:\b)"
    };
}
macro_rules! card_pattern {
    // 4111111111111111 / 4111 1111 1111 1111 / 4111-1111-1111-1111 / 3782 822463 10005
    () => {
        concat!(
            r"(?-u:\b)(?:[0-9]{13,19}",
            r"|[0-9]{4}(?:[ \-][0-9]{4}){2}[ \-][0-9]{1,4}(?:[ \-][0-9]{1,3})?",
            r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{5})(?-u:\b)",
        )
    };
}
macro_rules! ssn_pattern {
    // 123-45-6789
    () => {
        r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)"
    };
}
macro_rules! phone_pattern {
    () => {
        concat!(
            // +1 (415) 555-0100
            r"\+[0-9]{1,3}[ .\-]?\([0-9]{1,4}\)(?:[ .\-]?[0-9]{2,5}){1,4}(?-u:\b)",
            // +5511999999999 / +1 415 555 0100 / +44 20 7946 0958 / +33 6 12 34 56 78
            r"|\+[0-9]{1,3}[ .\-]?[0-9]{1,5}(?:[ .\-]?[0-9]{2,5}){0,5}(?-u:\b)",
            // (415) 555-0100 / (11) 99999-9999
            r"|\([0-9]{2,4}\)[ ]?[0-9]{3,5}[\-. ][0-9]{4}(?-u:\b)",
            // 415-555-0100 / 415.555.0100 / 415 555 0100
            r"|(?-u:\b)[0-9]{3}[\-. ][0-9]{3}[\-. ][0-9]{4}(?-u:\b)",
            // national numbers with a trunk 0: 020 7946 0958 / 0800 123 4567
            r"|(?-u:\b)0[0-9]{1,4}(?:[ \-][0-9]{2,4}){2,4}(?-u:\b)",
        )
    };
}

/// All kinds in one alternation. Leftmost-first: at the same start, an earlier kind wins, so a
/// card is decided before an SSN, and both before a phone number.
const CANDIDATES: &str = concat!(
    "(?:",
    email_pattern!(),
    ")|(?:",
    iban_pattern!(),
    ")|(?:",
    card_pattern!(),
    ")|(?:",
    ssn_pattern!(),
    ")|(?:",
    phone_pattern!(),
    ")",
);

// The patterns are compile-time constants covered by tests: failing to compile them is a
// programming error, not an input-driven one.
static CANDIDATE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(CANDIDATES).expect("PII pattern compiles"));
static WHOLE_CARD_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!("^(?:", card_pattern!(), ")$")).expect("card pattern compiles")
});

/// Replaces every e-mail, phone number, card, SSN and IBAN in `text` with `[REDACTED_<KIND>]`.
pub fn redact_pii(text: &str) -> Redacted {
    // Every kind needs an '@' or a digit: most chat messages have neither and skip the regex.
    if !text.bytes().any(|b| b == b'@' || b.is_ascii_digit()) {
        return Redacted {
            text: text.to_owned(),
            kinds: Vec::new(),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut kinds = Vec::new();
    let mut copied = 0;
    // Plain `find_at` and classification in code: asking the regex for capture groups runs a
    // second, much slower engine on every match. A rejected candidate (say a 16-digit order
    // number failing Luhn) is skipped whole, so no shorter kind is found inside it; except
    // that a rejected grouped number may have swallowed a card written right after another
    // number (`2024 4111 1111 1111 1111`, `00 4111 ...`: found by the property tests), so it is
    // rescanned from its second group, where only a card may be found.
    let mut at = 0;
    let mut cards_only_until = 0;
    while let Some(found) = CANDIDATE_RE.find_at(text, at) {
        let start = found.start();
        let candidate = without_local_part(found.as_str(), &text[found.end()..]);
        at = start + candidate.len();
        match classify(candidate) {
            Some((kind, len)) if start >= cards_only_until || kind == PiiKind::Card => {
                out.push_str(&text[copied..start]);
                out.push_str(kind.token());
                kinds.push(kind);
                copied = start + len;
                // What was not redacted (groups dropped from a card or an IBAN) is scanned
                // again: it may begin the next value.
                at = copied;
            }
            Some(_) => {}
            None => {
                if let Some(second) = second_group(candidate) {
                    at = start + second;
                    cards_only_until = cards_only_until.max(start + candidate.len());
                }
            }
        }
    }
    out.push_str(&text[copied..]);
    Redacted { text: out, kinds }
}

/// A number written right before an e-mail's local part ends in it (`4111 ... 1111 42@x.io`,
/// `... 0004 0%@a.io`: found by the property tests): its last group is left to be found as part
/// of the e-mail.
fn without_local_part<'t>(candidate: &'t str, after: &str) -> &'t str {
    let rest_of_local_part =
        after.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    if !rest_of_local_part.starts_with('@') || candidate.contains('@') {
        return candidate;
    }
    match candidate.rfind([' ', '-', '.']) {
        Some(separator) => &candidate[..separator],
        None => candidate,
    }
}

/// The kind of a candidate, once validated, and how many of its bytes to redact. Which
/// alternative matched shows in the candidate's shape: only e-mails hold `@`, only IBANs start
/// with a letter, and so on.
fn classify(candidate: &str) -> Option<(PiiKind, usize)> {
    let bytes = candidate.as_bytes();
    let first = *bytes.first()?;
    if bytes.contains(&b'@') {
        return Some((PiiKind::Email, candidate.len()));
    }
    if first.is_ascii_uppercase() {
        return longest_valid_iban(candidate).map(|len| (PiiKind::Iban, len));
    }
    let kind = if first == b'+' || first == b'(' {
        PiiKind::Phone
    } else if is_ssn_shaped(bytes) {
        PiiKind::Ssn
    } else if bytes.iter().filter(|b| b.is_ascii_digit()).count() >= 13
        && WHOLE_CARD_RE.is_match(candidate)
    {
        PiiKind::Card
    } else {
        PiiKind::Phone
    };
    match kind {
        PiiKind::Card => longest_valid_card(candidate).map(|len| (kind, len)),
        PiiKind::Ssn => ssn_valid(candidate).then_some((kind, candidate.len())),
        _ => phone_plausible(candidate).then_some((kind, candidate.len())),
    }
}

/// The card pattern takes up to two short groups after the fourth (`4-4-4-4-3`), so a number
/// written right after a card (`4111 1111 1111 1111 12/27`, found by fuzzing) joins it and
/// fails Luhn: drop trailing groups while what is left is still card-shaped.
fn longest_valid_card(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        let prefix = &candidate[..end];
        if luhn_valid(prefix) && WHOLE_CARD_RE.is_match(prefix) {
            return Some(end);
        }
        end = prefix.rfind([' ', '-'])?;
    }
}

/// Where the second group of a rejected number (card- or phone-shaped) starts, if it has one.
fn second_group(candidate: &str) -> Option<usize> {
    if candidate.contains('@') || candidate.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None; // e-mails are never rejected; an IBAN's groups are not numbers
    }
    candidate
        .find([' ', '-', '.', ')'])
        .map(|separator| separator + 1)
}

/// The IBAN pattern is greedy and may swallow a following upper-case word (`... 7654 32 OK`):
/// drop trailing space-separated groups until the checksum holds.
fn longest_valid_iban(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        let prefix = &candidate[..end];
        if iban_valid(prefix) {
            return Some(end);
        }
        end = prefix.rfind(' ')?;
    }
}

/// `ddd-dd-dddd`.
fn is_ssn_shaped(bytes: &[u8]) -> bool {
    bytes.len() == 11
        && bytes.iter().enumerate().all(|(i, b)| match i {
            3 | 6 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Area 000, 666 and 900-999, group 00 and serial 0000 are never issued.
fn ssn_valid(ssn: &str) -> bool {
    let mut parts = ssn.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// International numbers carry 8 to 15 digits (E.164); national ones at least 9, which keeps
/// dates such as `05-17-2024` out.
fn phone_plausible(phone: &str) -> bool {
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    let min = if phone.starts_with('+') { 8 } else { 9 };
    (min..=15).contains(&digits)
}
