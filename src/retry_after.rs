//! `Retry-After`, as every HTTP client of wagate reads it (the Graph API client, the
//! OpenAI-compatible model client): one parser, one clamp.
//!
//! Both forms of RFC 9110 §10.2.3 are read: delta-seconds (`120`; a decimal such as `1.5` is
//! accepted, since some model servers send one) and an HTTP-date (`Wed, 21 Oct 2015 07:28:00
//! GMT`, counted from now; a date in the past means "now"). Whatever a server sends, the wait
//! is at most [`MAX_RETRY_AFTER`]: `1e20` or a date in the year 9999 must not overflow a
//! `Duration` (that panicked) nor park a retry for centuries. Negative, NaN and unreadable
//! values count as absent.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` can ask for; longer values are cut to this. Callers still
/// apply their own, shorter budgets.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The `Retry-After` of a response, clamped; `None` when absent or unreadable.
pub fn from_headers(headers: &HeaderMap) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
}

/// `value` read as delta-seconds or an HTTP-date relative to `now`, clamped to
/// [`MAX_RETRY_AFTER`].
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return None;
        }
        return Some(Duration::from_secs_f64(
            seconds.min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    let at: SystemTime = chrono::DateTime::parse_from_rfc2822(value).ok()?.into();
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn delta_seconds_are_read_whole_or_decimal() {
        assert_eq!(parse("7", at(0)), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 1.5 ", at(0)), Some(Duration::from_millis(1500)));
        assert_eq!(parse("0", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn a_huge_value_is_clamped_instead_of_panicking() {
        for huge in ["1e20", "1e300", "18446744073709551616", "99999999999999"] {
            assert_eq!(parse(huge, at(0)), Some(MAX_RETRY_AFTER), "{huge}");
        }
    }

    #[test]
    fn negative_infinite_and_unreadable_values_count_as_absent() {
        for bad in ["-1", "NaN", "inf", "-inf", "soon", ""] {
            assert_eq!(parse(bad, at(0)), None, "{bad}");
        }
    }

    #[test]
    fn an_http_date_is_counted_from_now_and_clamped() {
        // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480.
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            parse(date, at(1_445_412_480 - 30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse(date, at(1_445_412_480 + 30)), Some(Duration::ZERO));
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT", at(0)),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn the_header_is_read_from_a_response() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers), None);
        headers.insert(RETRY_AFTER, "1e20".parse().unwrap());
        assert_eq!(from_headers(&headers), Some(MAX_RETRY_AFTER));
    }
}
