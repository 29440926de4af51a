//! The builtin tools that send WhatsApp messages: `reply_buttons`, `reply_list`, `react`,
//! `send_image`, `send_document`, `send_location`.
//!
//! A call sends nothing by itself: it checks its arguments against what Meta would refuse
//! (lengths and counts of Meta's Messages API, https links, coordinates) and, when they pass,
//! hands the message to the turn ([`super::ToolOutput::send`]), which sends it in the turn's
//! order, before the reply text, through the same exactly-once path as text. When they do not
//! pass, the model is told precisely what to fix, and nothing goes out.
//!
//! Limits (Meta's documentation of interactive, media and location messages): reply buttons
//! 1–3, title at most 20 characters and unique, id at most 256, body at most 1024; list body
//! at most 4096, button label at most 20, 1–10 rows, row title at most 24 and unique,
//! description at most 72, id at most 200; media caption at most 1024; links must be https.

use crate::whatsapp::graph::OutgoingMessage;
use serde_json::{json, Map, Value as Json};

mod rules;

use rules::{buttons, document, image, list, location, quoted, reaction, BUTTONS_MAX, ROWS_MAX};

/// Which sending tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendTool {
    ReplyButtons,
    ReplyList,
    React,
    SendImage,
    SendDocument,
    SendLocation,
}

impl SendTool {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SendTool::ReplyButtons => "reply_buttons",
            SendTool::ReplyList => "reply_list",
            SendTool::React => "react",
            SendTool::SendImage => "send_image",
            SendTool::SendDocument => "send_document",
            SendTool::SendLocation => "send_location",
        }
    }

    pub(crate) fn named(name: &str) -> Option<SendTool> {
        [
            SendTool::ReplyButtons,
            SendTool::ReplyList,
            SendTool::React,
            SendTool::SendImage,
            SendTool::SendDocument,
            SendTool::SendLocation,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The default description the model reads (the agent file's `description` replaces it).
    pub(crate) fn description(self) -> &'static str {
        match self {
            SendTool::ReplyButtons => {
                "Ask the customer a question they answer with one tap: sends `body` with 1 to 3 \
                 buttons (each at most 20 characters). Their tap comes back to you as the \
                 button's text. Use it for short choices like yes/no or a few options."
            }
            SendTool::ReplyList => {
                "Offer the customer up to 10 options in a list: sends `body` with a `button` \
                 (at most 20 characters) that opens the list of `rows` (title at most 24 \
                 characters, optional description at most 72). Their choice comes back to you \
                 as the row's title."
            }
            SendTool::React => {
                "React to the customer's last message with one emoji (for example 👍 or ❤️)."
            }
            SendTool::SendImage => {
                "Send the customer a picture from a public https URL, with an optional caption."
            }
            SendTool::SendDocument => {
                "Send the customer a document (a PDF, say) from a public https URL, with an \
                 optional caption and file name."
            }
            SendTool::SendLocation => {
                "Send the customer a location pin: latitude and longitude, optional place name \
                 and address."
            }
        }
    }

    /// The JSON Schema of the arguments.
    pub(crate) fn parameters(self) -> Json {
        let text = |description: &str| json!({"type": "string", "description": description});
        match self {
            SendTool::ReplyButtons => json!({
                "type": "object",
                "properties": {
                    "body": text("The question or message above the buttons."),
                    "buttons": {
                        "type": "array",
                        "description": "1 to 3 button labels, each at most 20 characters.",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": BUTTONS_MAX,
                    }
                },
                "required": ["body", "buttons"]
            }),
            SendTool::ReplyList => json!({
                "type": "object",
                "properties": {
                    "body": text("The message above the list."),
                    "button": text("The label of the button that opens the list, at most 20 characters."),
                    "rows": {
                        "type": "array",
                        "description": "1 to 10 options.",
                        "minItems": 1,
                        "maxItems": ROWS_MAX,
                        "items": {
                            "type": "object",
                            "properties": {
                                "title": text("At most 24 characters."),
                                "description": text("Optional, at most 72 characters."),
                                "id": text("Optional identifier of the option, kept for you in the conversation.")
                            },
                            "required": ["title"]
                        }
                    }
                },
                "required": ["body", "button", "rows"]
            }),
            SendTool::React => json!({
                "type": "object",
                "properties": {"emoji": text("One emoji.")},
                "required": ["emoji"]
            }),
            SendTool::SendImage => json!({
                "type": "object",
                "properties": {
                    "url": text("A public https URL of a JPEG or PNG image."),
                    "caption": text("Optional text under the image.")
                },
                "required": ["url"]
            }),
            SendTool::SendDocument => json!({
                "type": "object",
                "properties": {
                    "url": text("A public https URL of the document."),
                    "caption": text("Optional text under the document."),
                    "filename": text("Optional file name the customer sees, like menu.pdf.")
                },
                "required": ["url"]
            }),
            SendTool::SendLocation => json!({
                "type": "object",
                "properties": {
                    "latitude": {"type": "number", "description": "-90 to 90."},
                    "longitude": {"type": "number", "description": "-180 to 180."},
                    "name": text("Optional place name."),
                    "address": text("Optional address.")
                },
                "required": ["latitude", "longitude"]
            }),
        }
    }

    /// The message to send, or what the model must fix (then nothing is sent).
    pub(crate) fn build(self, args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
        let built = match self {
            SendTool::ReplyButtons => buttons(args),
            SendTool::ReplyList => list(args),
            SendTool::React => reaction(args),
            SendTool::SendImage => image(args),
            SendTool::SendDocument => document(args),
            SendTool::SendLocation => location(args),
        };
        built.map_err(|problem| {
            format!(
                "Not sent: {problem} Fix it and call `{}` again, or answer in text.",
                self.name()
            )
        })
    }

    /// What the model reads after a message passed: it is on its way.
    pub(crate) fn confirmation(self, message: &OutgoingMessage) -> String {
        match message {
            OutgoingMessage::Buttons { buttons, .. } => format!(
                "Sent: the customer sees your message with the buttons {}. Their tap comes back \
                 to you as a new message. Do not repeat the question or the options.",
                quoted(buttons.iter().map(|b| b.title.as_str()))
            ),
            OutgoingMessage::List { rows, .. } => format!(
                "Sent: the customer sees your message with a list of {} options. Their choice \
                 comes back to you as a new message. Do not repeat the options.",
                rows.len()
            ),
            OutgoingMessage::Reaction { emoji, .. } => {
                format!("Sent: you reacted with {emoji} to the customer's message.")
            }
            _ => format!("Sent to the customer ({}).", self.name().replace('_', " ")),
        }
    }
}

#[cfg(test)]
mod tests;
