//! The 24-hour customer service window: Meta delivers free-form messages (text, interactive,
//! media, reactions) only within 24 hours of the customer's last message, by the timestamp
//! Meta gave that message; after it, only an approved template (else error 131047).
//!
//! A timestamp more than [`IMPLAUSIBLE_AGE`] older than the moment the message reached us
//! cannot come from Meta, which stops redelivering a webhook after 7 days: it is a replayed
//! fixture, a test body or a broken clock, and the arrival time stands in for it. (Without
//! this, a load test posting last year's timestamps would see every reply held.)

use std::time::Duration;

/// How long after the customer's last message free-form messages are accepted.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Meta retries a webhook for up to 7 days; a message older than that at arrival is not
/// Meta's timestamp to trust.
pub const IMPLAUSIBLE_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Meta's error code for a free-form message outside the window.
pub const OUTSIDE_WINDOW_CODE: i64 = 131047;

/// The reason recorded on a message that was not sent because of the window (shown by
/// `wagate inbox`, the operator API and the console).
pub const OUTSIDE_WINDOW: &str = "outside_24h_window";

/// When (unix ms) the customer wrote a message: Meta's `timestamp` (unix seconds), or the
/// arrival time `received_ms` when the timestamp is missing or implausibly old.
pub fn customer_message_at(timestamp_s: i64, received_ms: i64) -> i64 {
    let meta_ms = timestamp_s.saturating_mul(1000);
    let implausible = received_ms.saturating_sub(millis(IMPLAUSIBLE_AGE));
    if timestamp_s <= 0 || meta_ms < implausible {
        received_ms
    } else {
        meta_ms
    }
}

/// Whether a free-form message may go out at `now_ms` to a customer whose last message was
/// at `last_ms` (unix ms, from [`customer_message_at`]).
pub fn is_open(last_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(last_ms) <= millis(WINDOW)
}

/// The operator-facing explanation that goes with [`OUTSIDE_WINDOW`].
pub fn explanation(template_configured: bool) -> String {
    if template_configured {
        "the customer's last message is older than 24 hours: WhatsApp only accepts a template \
         now; window.reopen_template was sent and this message is held until the customer writes"
            .into()
    } else {
        "the customer's last message is older than 24 hours: WhatsApp only accepts a template \
         now; set window.reopen_template in channels.yaml to reopen the conversation, or wait \
         for the customer to write"
            .into()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3600 * 1000;

    #[test]
    fn a_message_within_24_hours_keeps_the_window_open_and_one_older_closes_it() {
        let now = 1_800_000_000_000;
        let written = customer_message_at(now / 1000 - 23 * 3600, now);
        assert!(is_open(written, now));
        let old = customer_message_at(now / 1000 - 25 * 3600, now);
        assert!(!is_open(old, now));
    }

    #[test]
    fn a_timestamp_older_than_meta_ever_delivers_counts_from_its_arrival() {
        let arrived = 1_800_000_000_000;
        assert_eq!(customer_message_at(1_700_000_000, arrived), arrived);
        assert_eq!(customer_message_at(0, arrived), arrived);
        // Six days late is still Meta's word.
        let late = arrived / 1000 - 6 * 24 * 3600;
        assert_eq!(customer_message_at(late, arrived), late * 1000);
        assert!(!is_open(
            customer_message_at(late, arrived),
            arrived + HOUR_MS
        ));
    }
}
