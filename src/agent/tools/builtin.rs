//! Tools built into wagate, chosen by name in the agent file (`type: builtin`).
//!
//! `current_time` answers in UTC, at a UTC offset, or in a named time zone (see `clock.rs`);
//! the tools that send WhatsApp messages (`reply_buttons`, `reply_list`, `react`,
//! `send_image`, `send_document`, `send_location`) are in `whatsapp.rs`.

use super::clock;
use super::whatsapp::SendTool;
use super::ToolOutput;
use crate::llm::ToolDefinition;
use serde_json::{json, Map, Value as Json};

/// Names accepted for `type: builtin` tools (the config's list, which validation uses).
pub use crate::config::BUILTIN_TOOLS;

/// One built-in tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    CurrentTime,
    /// Hands the conversation to a person. The call itself only answers the model; the ReAct
    /// loop sees it (`ToolSet::handoff_reason`) and stops, and the responder moves the
    /// conversation to `human` and sends `handoff.message`.
    HandoffToHuman,
    /// Sends a WhatsApp message (buttons, a list, a reaction, media, a location) in the turn's
    /// order, before the reply text.
    Send(SendTool),
}

impl Builtin {
    /// The tool called `name`, if wagate has one.
    pub(crate) fn named(name: &str) -> Option<Builtin> {
        match name {
            "current_time" => Some(Builtin::CurrentTime),
            "handoff_to_human" => Some(Builtin::HandoffToHuman),
            other => SendTool::named(other).map(Builtin::Send),
        }
    }

    /// What the model is shown; `description` from the agent file replaces the default text.
    pub(crate) fn definition(self, description: Option<&str>) -> ToolDefinition {
        match self {
            Builtin::CurrentTime => ToolDefinition {
                name: "current_time".into(),
                description: description.unwrap_or(clock::DESCRIPTION).into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "utc_offset": {
                            "type": "string",
                            "description": "Offset from UTC like -03:00, or a time zone name \
                                            like America/Sao_Paulo. Default: UTC."
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
            Builtin::Send(tool) => ToolDefinition {
                name: tool.name().into(),
                description: description.unwrap_or(tool.description()).into(),
                parameters: tool.parameters(),
            },
        }
    }

    /// Runs the tool: the text goes back to the model, and a sending tool whose arguments
    /// passed hands its message to the turn.
    pub(crate) fn call(self, arguments: &Map<String, Json>) -> ToolOutput {
        match self {
            Builtin::CurrentTime => ToolOutput::text(clock::current_time(arguments)),
            Builtin::HandoffToHuman => ToolOutput::text(
                "Done: a person from the team takes the conversation over now and the customer \
                 has been told. Do not write anything more.",
            ),
            Builtin::Send(tool) => match tool.build(arguments) {
                Ok(message) => ToolOutput {
                    text: tool.confirmation(&message),
                    send: Some(message),
                },
                Err(fix) => ToolOutput::text(fix),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

    fn answer(args: Json) -> String {
        let map = args.as_object().cloned().unwrap_or_default();
        Builtin::CurrentTime.call(&map).text
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
    fn an_unknown_zone_is_explained_to_the_model() {
        let text = answer(json!({"utc_offset": "Europe/Atlantis"}));
        assert!(text.contains("time zone name"), "{text}");
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
