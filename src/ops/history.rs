//! `wagate history PHONE`: a conversation as the agent sees it, from the `memory` table.
//! Memory is stored after the input guardrails ran, so it is already redacted the way the model
//! saw it. Read-only; safe beside a running server.

use super::{utc_seconds, OpsError};
use crate::inbox::store::{DatabaseLocation, OperatorDb};
use crate::memory::key_for_whatsapp;
use std::fmt::Write as _;

/// One remembered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Images kept as media ids (downloaded again for vision models, never stored).
    pub images: usize,
}

/// The conversation and whether the customer opted out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub entries: Vec<HistoryEntry>,
    /// (business phone_number_id, unix ms since, `keyword` or `user_preferences`).
    pub opted_out: Vec<(String, i64, String)>,
}

/// The memory key of a phone number as an operator types it: `+1 555-123-4567`,
/// `15551234567` and `+15551234567` all give `wa_15551234567`. Anything that is not a phone
/// number (a business-scoped user id) is used as is.
pub fn key_for_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let without_plus = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let separators = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
    let looks_like_number = !without_plus.is_empty()
        && without_plus
            .chars()
            .all(|c| c.is_ascii_digit() || separators(c));
    if looks_like_number {
        let digits: String = without_plus.chars().filter(char::is_ascii_digit).collect();
        key_for_whatsapp(&digits)
    } else {
        key_for_whatsapp(without_plus)
    }
}

/// The newest `limit` messages remembered under `key`, oldest first, expired or not, and the
/// customer's opt-outs.
pub fn history(
    database: impl Into<DatabaseLocation>,
    key: &str,
    limit: usize,
) -> Result<History, OpsError> {
    let db = OperatorDb::open_at(&database.into(), false)?;
    let entries = db.history(key, limit)?.unwrap_or_default();
    let user = key.strip_prefix("wa_").unwrap_or(key);
    let opted_out = db.opted_out_of(user)?;
    if entries.is_empty() && opted_out.is_empty() {
        return Err(OpsError::NoHistory(key.to_string()));
    }
    let entries = entries
        .into_iter()
        .map(|e| HistoryEntry {
            role: e.role.as_str().to_string(),
            images: e.media.len(),
            content: e.content,
            created_at: e.created_at,
        })
        .collect();
    Ok(History { entries, opted_out })
}

/// The conversation as the terminal shows it: the opt-out mark first, then one block per
/// message, continuation lines indented.
pub fn render(key: &str, history: &History) -> String {
    let mut out = String::new();
    for (number, since, source) in &history.opted_out {
        let how = if source == "user_preferences" {
            "stopped marketing messages in WhatsApp"
        } else {
            "sent an opt-out keyword"
        };
        let _ = writeln!(
            out,
            "OPTED OUT of business number {number} since {} ({how}): nothing is sent until a resume keyword",
            utc_seconds(since / 1000)
        );
    }
    let entries = &history.entries;
    let _ = writeln!(
        out,
        "{key}: {} message(s), oldest first (as stored: after redaction)",
        entries.len()
    );
    for e in entries {
        let mut lines = e.content.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(out, "{}  {:<9}  {first}", utc_seconds(e.created_at), e.role);
        for line in lines {
            let _ = writeln!(out, "{:36}{line}", "");
        }
        if e.images > 0 {
            let _ = writeln!(
                out,
                "{:36}({} image(s) kept as media ids, not bytes: shown again to vision models for 7 days)",
                "", e.images
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_is_found_with_or_without_plus_and_separators() {
        assert_eq!(key_for_phone("+15551234567"), "wa_15551234567");
        assert_eq!(key_for_phone("15551234567"), "wa_15551234567");
        assert_eq!(key_for_phone(" +1 (555) 123-4567 "), "wa_15551234567");
        assert_eq!(key_for_phone("US.abc123"), "wa_US.abc123");
    }
}
