//! Operator commands: `wagate inbox`, `retry`, `history`, `check --online` and `healthcheck`.
//!
//! They run beside a live server on the same database file, through the store's
//! [`OperatorDb`](crate::inbox::store::OperatorDb) (the store keeps all the SQL): read-only for
//! `inbox` and `history` (readers never block the writer), one short `BEGIN IMMEDIATE`
//! transaction for `retry`, and a busy timeout so a commit in progress makes them wait a moment
//! instead of failing. With `--database` (`WAGATE_DATABASE_URL`) they read and write
//! PostgreSQL instead, beside any number of replicas, and print the same reports.
//!
//! Each command returns its output as text (the CLI prints it) or an [`OpsError`] whose
//! [`OpsError::exit_code`] scripts can rely on.

mod error;
pub mod healthcheck;
pub mod history;
pub mod inbox;
pub mod online;
pub mod retry;

pub use error::OpsError;

/// A phone number with all but its last 4 characters hidden: `••••••••1234`. Screenshots of
/// `wagate inbox` end up in tickets and chats; the tail is enough to tell conversations apart.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let tail: String = if chars.len() > 4 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("••••••••{tail}")
}

/// A duration as an operator reads it at a glance: `42s`, `3m 12s`, `2h 5m`, `3d 4h`.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m {}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h {}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// Unix milliseconds as `2025-01-31 14:05:09 UTC`.
fn utc_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{millis} ms"))
}

/// Unix seconds as `2025-01-31 14:05:09 UTC`.
fn utc_seconds(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{seconds} s"))
}

/// Text cut to `max` characters (with `…`) and kept on one line, for table cells.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_shows_only_its_last_four_digits() {
        assert_eq!(mask_number("15551234567"), "••••••••4567");
        assert_eq!(mask_number("123"), "••••••••");
    }

    #[test]
    fn ages_read_in_the_largest_useful_units() {
        assert_eq!(human_age(42), "42s");
        assert_eq!(human_age(192), "3m 12s");
        assert_eq!(human_age(7_500), "2h 5m");
        assert_eq!(human_age(3 * 86_400 + 4 * 3_600), "3d 4h");
        assert_eq!(human_age(-5), "0s");
    }

    #[test]
    fn long_or_multi_line_text_fits_one_table_cell() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
    }
}
