//! `handoff.hours`: is the team there right now? Weekly ranges in an IANA time zone, so
//! daylight saving time moves with the zone (a `09:00-18:00` day stays 09:00-18:00 local time
//! on both sides of the change).

use crate::config::{HoursSettings, DAY_NAMES};
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Opening hours ready to ask; built once per config (validation builds it too).
#[derive(Debug, Clone)]
pub enum Schedule {
    /// No `hours`: the team is always there.
    Always,
    Weekly {
        zone: TimeZone,
        /// Monday first; each day's ranges as [start, end) local times.
        days: [Vec<(Time, Time)>; 7],
    },
}

/// What is wrong with `hours`, and where (`timezone` or `days.<day>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoursError {
    pub field: Vec<String>,
    pub message: String,
}

impl Schedule {
    pub fn parse(hours: &HoursSettings) -> Result<Schedule, HoursError> {
        if !hours.is_set() {
            return Ok(Schedule::Always);
        }
        let err = |field: &[&str], message: String| HoursError {
            field: field.iter().map(|s| s.to_string()).collect(),
            message,
        };
        if hours.timezone.is_empty() {
            return Err(err(
                &["timezone"],
                "is empty; `days` needs a time zone, like `Europe/Madrid`".into(),
            ));
        }
        let zone = jiff::tz::db().get(&hours.timezone).map_err(|_| {
            err(
                &["timezone"],
                format!(
                    "`{}` is not an IANA time zone name; write it like `Europe/Madrid` or `America/Sao_Paulo`",
                    hours.timezone
                ),
            )
        })?;
        let mut days: [Vec<(Time, Time)>; 7] = Default::default();
        for (name, spec) in &hours.days {
            let Some(index) = DAY_NAMES.iter().position(|d| d == name) else {
                return Err(err(
                    &["days", name],
                    format!("`{name}` is not a day; use {}", DAY_NAMES.join(", ")),
                ));
            };
            days[index] = parse_ranges(spec).map_err(|m| err(&["days", name], m))?;
        }
        Ok(Schedule::Weekly { zone, days })
    }

    /// Whether the team is there at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        match self {
            Schedule::Always => true,
            Schedule::Weekly { zone, days } => {
                let local = now.to_zoned(zone.clone());
                let day = weekday_index(local.weekday());
                let time = local.time();
                days[day]
                    .iter()
                    .any(|(start, end)| *start <= time && time < *end)
            }
        }
    }
}

fn weekday_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

/// `"09:00-13:00, 14:00-18:00"`; empty is closed. `24:00` is accepted as an end (midnight).
fn parse_ranges(spec: &str) -> Result<Vec<(Time, Time)>, String> {
    let mut ranges = Vec::new();
    for range in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let shape = || format!("`{range}` is not a range; write it like `09:00-18:00`");
        let (start, end) = range.split_once('-').ok_or_else(shape)?;
        let start = parse_time(start.trim(), false).ok_or_else(shape)?;
        let end = parse_time(end.trim(), true).ok_or_else(shape)?;
        if end <= start {
            return Err(format!(
                "`{range}` ends before it starts; a range cannot cross midnight, split it over two days"
            ));
        }
        ranges.push((start, end));
    }
    Ok(ranges)
}

fn parse_time(text: &str, is_end: bool) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if is_end && h == 24 && m == 0 {
        return Some(Time::MAX);
    }
    Time::new(h, m, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn schedule(zone: &str, days: &[(&str, &str)]) -> Schedule {
        let hours = HoursSettings {
            timezone: zone.into(),
            days: days
                .iter()
                .map(|(d, r)| (d.to_string(), r.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        Schedule::parse(&hours).expect("valid hours")
    }

    fn at(utc: &str) -> Timestamp {
        utc.parse().expect("an RFC 3339 instant")
    }

    #[test]
    fn opening_hours_follow_daylight_saving_in_the_zone() {
        let madrid = schedule("Europe/Madrid", &[("mon", "09:00-18:00"), ("sun", "")]);
        // Monday 2026-01-12, winter (UTC+1): 08:30 UTC is 09:30 local.
        assert!(madrid.is_open(at("2026-01-12T08:30:00Z")));
        assert!(!madrid.is_open(at("2026-01-12T07:30:00Z")));
        // Monday 2026-07-13, summer (UTC+2): 07:30 UTC is 09:30 local, 16:30 UTC is 18:30.
        assert!(madrid.is_open(at("2026-07-13T07:30:00Z")));
        assert!(!madrid.is_open(at("2026-07-13T16:30:00Z")));
        assert!(madrid.is_open(at("2026-07-13T15:30:00Z")));
    }

    #[test]
    fn a_day_missing_or_empty_is_closed() {
        let hours = schedule("America/Sao_Paulo", &[("mon", "09:00-18:00"), ("sun", "")]);
        // Sunday 2026-07-12 12:00 local (UTC-3) and Tuesday 2026-07-14 12:00 local.
        assert!(!hours.is_open(at("2026-07-12T15:00:00Z")));
        assert!(!hours.is_open(at("2026-07-14T15:00:00Z")));
        assert!(hours.is_open(at("2026-07-13T15:00:00Z")));
    }

    #[test]
    fn the_local_day_counts_not_the_utc_day() {
        // Monday 00:30 in Tokyo is still Sunday in UTC.
        let tokyo = schedule("Asia/Tokyo", &[("mon", "00:00-24:00")]);
        assert!(tokyo.is_open(at("2026-07-12T15:30:00Z")));
        assert!(!tokyo.is_open(at("2026-07-12T14:30:00Z")));
    }

    #[test]
    fn several_ranges_a_day_are_accepted() {
        let hours = schedule("UTC", &[("wed", "09:00-12:00, 14:00-18:00")]);
        assert!(hours.is_open(at("2026-07-15T10:00:00Z")));
        assert!(!hours.is_open(at("2026-07-15T13:00:00Z")));
        assert!(hours.is_open(at("2026-07-15T17:59:00Z")));
    }

    #[test]
    fn no_hours_means_always_open() {
        let always = Schedule::parse(&HoursSettings::default()).unwrap();
        assert!(always.is_open(at("2026-07-12T03:00:00Z")));
    }

    #[test]
    fn bad_hours_say_which_field_and_how_to_write_it() {
        let bad = |zone: &str, day: &str, range: &str| {
            let hours = HoursSettings {
                timezone: zone.into(),
                days: [(day.to_string(), range.to_string())].into_iter().collect(),
            };
            Schedule::parse(&hours).unwrap_err()
        };
        let e = bad("Mars/Olympus", "mon", "09:00-18:00");
        assert_eq!(e.field, ["timezone"]);
        assert!(e.message.contains("IANA"), "{}", e.message);
        let e = bad("UTC", "monday", "09:00-18:00");
        assert_eq!(e.field, ["days", "monday"]);
        let e = bad("UTC", "mon", "9am to 5pm");
        assert!(e.message.contains("09:00-18:00"), "{}", e.message);
        let e = bad("UTC", "mon", "18:00-09:00");
        assert!(e.message.contains("midnight"), "{}", e.message);
        let e = bad("", "mon", "09:00-18:00");
        assert_eq!(e.field, ["timezone"]);
    }
}
