//! Tools built into wagate, chosen by name in the agent file (`type: builtin`).
//!
//! `current_time` answers in UTC or at a fixed UTC offset given by the model (`"-03:00"`). Named
//! time zones (`America/Sao_Paulo`) would need the tz database as a dependency, so they are not
//! supported, and the tool's description says so.

use crate::llm::ToolDefinition;
use chrono::{FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Map, Value as Json};

/// Names accepted for `type: builtin` tools. (`crate::config` has no `BUILTIN_TOOLS` const on
/// this branch; config validation should use this list.)
pub const BUILTIN_TOOLS: &[&str] = &["current_time", "handoff_to_human"];

/// One built-in tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    CurrentTime,
    /// Hands the conversation to a person. The call itself only answers the model; the ReAct
    /// loop sees it (`ToolSet::handoff_reason`) and stops, and the responder moves the
    /// conversation to `human` and sends `handoff.message`.
    HandoffToHuman,
}

impl Builtin {
    /// The tool called `name`, if wagate has one.
    pub(crate) fn named(name: &str) -> Option<Builtin> {
        match name {
            "current_time" => Some(Builtin::CurrentTime),
            "handoff_to_human" => Some(Builtin::HandoffToHuman),
            _ => None,
        }
    }

    /// What the model is shown; `description` from the agent file replaces the default text.
    pub(crate) fn definition(self, description: Option<&str>) -> ToolDefinition {
        match self {
            Builtin::CurrentTime => ToolDefinition {
                name: "current_time".into(),
                description: description
                    .unwrap_or(
                        "Current date, time and weekday. UTC unless you pass `utc_offset` \
                         (like \"-03:00\" or \"+05:30\"); time zone names are not supported.",
                    )
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "utc_offset": {
                            "type": "string",
                            "description": "Offset from UTC as +HH:MM or -HH:MM. Default: UTC."
                        }
                    }
                }),
            },
            Builtin::HandoffToHuman => ToolDefinition {
                name: "handoff_to_human".into(),
                description: description
                    .unwrap_or(
                        "Hand the conversation to a person from the team when you cannot help, \
                         or the customer asks for a human. The customer is told a person will \
                         reply; you stop answering this conversation.",
                    )
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "reason": {
                            "type": "string",
                            "description": "Why a person is needed, in one sentence, for the team member who takes over."
                        }
                    }
                }),
            },
        }
    }

    /// Runs the tool; the text goes back to the model.
    pub(crate) fn call(self, arguments: &Map<String, Json>) -> String {
        match self {
            Builtin::CurrentTime => current_time(arguments.get("utc_offset")),
            Builtin::HandoffToHuman => {
                "Done: a person from the team takes the conversation over now and the customer \
                 has been told. Do not write anything more."
                    .into()
            }
        }
    }
}

fn current_time(utc_offset: Option<&Json>) -> String {
    let now = Utc::now();
    let offset = match utc_offset.and_then(Json::as_str).map(str::trim) {
        None | Some("") | Some("Z") | Some("UTC") | Some("utc") => None,
        Some(text) => match text.parse::<FixedOffset>() {
            Ok(offset) => Some(offset),
            Err(_) => {
                return format!(
                    "`utc_offset` must look like \"+02:00\" or \"-03:00\", got {text:?}. \
                     Time zone names are not supported; call again with an offset or without one."
                )
            }
        },
    };
    match offset {
        Some(offset) => {
            let local = now.with_timezone(&offset);
            format!(
                "{} ({})",
                local.to_rfc3339_opts(SecondsFormat::Secs, true),
                local.format("%A")
            )
        }
        None => format!(
            "{} ({}, UTC)",
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
            now.format("%A")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn answer(args: Json) -> String {
        let map = args.as_object().cloned().unwrap_or_default();
        Builtin::CurrentTime.call(&map)
    }

    fn timestamp(text: &str) -> DateTime<FixedOffset> {
        let stamp = text.split(' ').next().unwrap_or_default();
        DateTime::parse_from_rfc3339(stamp).expect("an RFC 3339 timestamp")
    }

    #[test]
    fn current_time_answers_now_in_utc_by_default() {
        let text = answer(json!({}));
        assert!(text.contains("Z ("), "{text}");
        let age = Utc::now().signed_duration_since(timestamp(&text));
        assert!(age.num_seconds().abs() <= 2, "{text}");
    }

    #[test]
    fn current_time_honours_a_fixed_utc_offset() {
        let text = answer(json!({"utc_offset": "-03:00"}));
        let stamp = timestamp(&text);
        assert_eq!(stamp.offset().local_minus_utc(), -3 * 3600, "{text}");
        assert!(text.starts_with(&stamp.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }

    #[test]
    fn a_time_zone_name_is_explained_to_the_model() {
        let text = answer(json!({"utc_offset": "Europe/Paris"}));
        assert!(text.contains("not supported"), "{text}");
    }

    #[test]
    fn every_listed_builtin_exists() {
        for name in BUILTIN_TOOLS {
            let tool = Builtin::named(name).expect("listed builtin exists");
            assert_eq!(tool.definition(None).name, *name);
        }
        assert_eq!(Builtin::named("rm_rf"), None);
    }
}
