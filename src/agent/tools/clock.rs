//! The `current_time` builtin. Small models pass the zone in many shapes (`"-03:00"`, `"00:00"`,
//! `"-3"`, `-3`, `"UTC-3"`, `"GMT+5:30"`, `"+0530"`, `"America/Sao_Paulo"`) and under several
//! argument names; every obvious one is accepted, so a model does not spend its iterations
//! retrying a value the tool could have understood. Zone names use the IANA database bundled
//! into the binary (jiff's `tzdb-bundle-always`), so no system files are needed.

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use serde_json::{Map, Value as Json};

/// Argument names models use for the zone; `utc_offset` is the documented one.
const ZONE_KEYS: &[&str] = &[
    "utc_offset",
    "timezone",
    "time_zone",
    "tz",
    "zone",
    "offset",
];

/// What the tool's `description` says it takes.
pub(super) const DESCRIPTION: &str = "Current date, time and weekday. UTC unless you pass \
     `utc_offset`: an offset like \"-03:00\" or \"+05:30\", or a time zone name like \
     \"America/Sao_Paulo\".";

/// The answer for these arguments: the time there, or what to pass instead.
pub(super) fn current_time(arguments: &Map<String, Json>) -> String {
    let value = ZONE_KEYS
        .iter()
        .find_map(|key| arguments.get(*key))
        .filter(|v| !v.is_null());
    let now = Timestamp::now();
    let zone = match value {
        None => None,
        Some(value) => match zone_of(value) {
            Some(zone) => zone,
            None => {
                return format!(
                    "`utc_offset` must be an offset like \"-03:00\" or a time zone name like \
                     \"America/Sao_Paulo\", got {value}. Call again with one of those, or \
                     without it for UTC."
                )
            }
        },
    };
    match zone {
        None => format!(
            "{} ({}, UTC)",
            now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            now.strftime("%A")
        ),
        Some((zone, label)) => {
            let local = now.to_zoned(zone);
            let stamp = local.strftime("%Y-%m-%dT%H:%M:%S%:z");
            match label {
                Some(name) => format!("{stamp} ({}, {name})", local.strftime("%A")),
                None => format!("{stamp} ({})", local.strftime("%A")),
            }
        }
    }
}

/// `Some(None)`: UTC. `Some(Some((zone, name)))`: a zone, with its name when it has one.
/// `None`: not understood.
#[allow(clippy::type_complexity)]
fn zone_of(value: &Json) -> Option<Option<(TimeZone, Option<String>)>> {
    if let Some(hours) = value.as_f64() {
        return fixed((hours * 3600.0).round() as i64);
    }
    let text = value.as_str()?.trim();
    let upper = text.to_ascii_uppercase();
    if matches!(upper.as_str(), "" | "Z" | "UTC" | "GMT" | "UTC+0" | "GMT+0") {
        return Some(None);
    }
    let offset_text = ["UTC", "GMT"]
        .iter()
        .find_map(|p| upper.strip_prefix(p))
        .unwrap_or(&upper);
    if let Some(seconds) = offset_seconds(offset_text.trim()) {
        return fixed(seconds);
    }
    let zone = TimeZone::get(text).ok()?;
    Some(Some((zone, Some(text.to_owned()))))
}

fn fixed(seconds: i64) -> Option<Option<(TimeZone, Option<String>)>> {
    if seconds == 0 {
        return Some(None);
    }
    let offset = Offset::from_seconds(i32::try_from(seconds).ok()?).ok()?;
    Some(Some((TimeZone::fixed(offset), None)))
}

/// `+HH:MM`, `HH:MM`, `-H`, `+HHMM`, `5.5`: seconds east of UTC, within ±18 hours.
fn offset_seconds(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let rest = rest.trim();
    let (hours, minutes): (i64, i64) = if let Some((h, m)) = rest.split_once(':') {
        (h.parse().ok()?, m.parse().ok()?)
    } else if rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()) {
        (rest[..2].parse().ok()?, rest[2..].parse().ok()?)
    } else if let Ok(hours) = rest.parse::<i64>() {
        (hours, 0)
    } else {
        let hours: f64 = rest.parse().ok()?;
        return ((0.0..=18.0).contains(&hours)).then(|| sign * (hours * 3600.0).round() as i64);
    };
    if hours > 18 || minutes >= 60 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offset_in(answer: &str) -> String {
        answer.split(' ').next().unwrap_or_default()[19..].to_owned()
    }

    fn ask(args: Json) -> String {
        current_time(args.as_object().unwrap())
    }

    #[test]
    fn the_offsets_small_models_write_are_all_understood() {
        for (value, expected) in [
            (json!("-03:00"), "-03:00"),
            (json!("-3"), "-03:00"),
            (json!(-3), "-03:00"),
            (json!("UTC-3"), "-03:00"),
            (json!("GMT+5:30"), "+05:30"),
            (json!("+0530"), "+05:30"),
            (json!("05:30"), "+05:30"),
            (json!(5.5), "+05:30"),
        ] {
            let answer = ask(json!({ "utc_offset": value }));
            assert_eq!(offset_in(&answer), expected, "{value} gave {answer}");
        }
    }

    #[test]
    fn a_zero_offset_without_a_sign_is_utc_not_an_error() {
        for value in ["00:00", "0", "+00:00", "UTC", "Z", ""] {
            let answer = ask(json!({ "utc_offset": value }));
            assert!(answer.contains("Z ("), "{value} gave {answer}");
        }
    }

    #[test]
    fn a_time_zone_name_is_honoured_under_any_usual_argument_name() {
        let answer = ask(json!({"timezone": "Asia/Kolkata"}));
        assert_eq!(offset_in(&answer), "+05:30", "{answer}");
        assert!(answer.contains("Asia/Kolkata"), "{answer}");
        let answer = ask(json!({"utc_offset": "America/Sao_Paulo"}));
        assert_eq!(offset_in(&answer), "-03:00", "{answer}");
    }

    #[test]
    fn nonsense_is_explained_to_the_model() {
        let answer = ask(json!({"utc_offset": "Mars/Olympus"}));
        assert!(answer.contains("America/Sao_Paulo"), "{answer}");
        let answer = ask(json!({"utc_offset": "+25:00"}));
        assert!(answer.contains("must be"), "{answer}");
    }
}
