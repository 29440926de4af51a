//! The messages wagate sends besides plain text, in Meta's Cloud API request shapes: reply
//! buttons and lists (interactive), media by link, a location, a reaction, and a template.
//!
//! An [`OutgoingMessage`] is what a reply part holds: it is saved (as JSON) before it is sent,
//! so a resumed turn sends exactly what was decided, and [`OutgoingMessage::request_body`]
//! builds the body of `POST /{phone_number_id}/messages` from it. The shapes follow Meta's
//! documentation of the Messages API: `interactive` with `type: button` (`action.buttons[]` of
//! `{type: reply, reply: {id, title}}`) or `type: list` (`action.button`, `action.sections[]`
//! with `rows[]` of `{id, title, description}`); `image` / `document` with `link`, `caption`
//! (and `filename`); `location` with `latitude`, `longitude`, `name`, `address`; `reaction`
//! with `message_id` and `emoji`; `template` with `name`, `language.code` and `components`.
//!
//! Validation of what Meta would refuse (lengths, counts, links) is the agent tools' job
//! (`agent::tools::whatsapp`), where the model can be told what to fix.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One message to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutgoingMessage {
    /// Plain text (already formatted for WhatsApp and at most 4096 characters).
    Text { body: String },
    /// An interactive message with 1–3 reply buttons.
    Buttons { body: String, buttons: Vec<Choice> },
    /// An interactive list: `button` opens it, the rows are the choices.
    List {
        body: String,
        button: String,
        rows: Vec<Choice>,
    },
    /// A reaction to one of the customer's messages (`message_id` is its wamid).
    Reaction { message_id: String, emoji: String },
    /// An image by link.
    Image {
        link: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// A document by link.
    Document {
        link: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// A pin on the map.
    Location {
        latitude: f64,
        longitude: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// An approved message template: the only message Meta delivers outside the 24-hour
    /// customer service window.
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<Value>,
    },
}

/// A reply button or a list row: what the customer taps. The tap comes back in the webhook
/// with this `id` and `title`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Choice {
    /// The id a choice gets when none was given: its title in lowercase, words joined by `_`
    /// (`Extra large` → `extra_large`); empty when the title has no letters or digits.
    pub fn id_from_title(title: &str) -> String {
        title
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    }

    /// `Title`, or `Title (id)` when the id says more than the title (a SKU, say).
    fn labelled(&self) -> String {
        let id = &self.id;
        let derived = Choice::id_from_title(&self.title);
        if id.is_empty()
            || *id == derived
            || id.strip_prefix(derived.as_str()).is_some_and(|rest| {
                rest.strip_prefix('_')
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
        {
            self.title.clone()
        } else {
            format!("{} ({id})", self.title)
        }
    }
}

impl OutgoingMessage {
    /// A text message.
    pub fn text(body: impl Into<String>) -> OutgoingMessage {
        OutgoingMessage::Text { body: body.into() }
    }

    /// Meta's `type` of the message (`text`, `interactive`, `image`, ...).
    pub fn graph_type(&self) -> &'static str {
        match self {
            OutgoingMessage::Text { .. } => "text",
            OutgoingMessage::Buttons { .. } | OutgoingMessage::List { .. } => "interactive",
            OutgoingMessage::Reaction { .. } => "reaction",
            OutgoingMessage::Image { .. } => "image",
            OutgoingMessage::Document { .. } => "document",
            OutgoingMessage::Location { .. } => "location",
            OutgoingMessage::Template { .. } => "template",
        }
    }

    /// A template is the one kind of message Meta accepts outside the 24-hour window.
    pub fn is_template(&self) -> bool {
        matches!(self, OutgoingMessage::Template { .. })
    }

    /// The text the message carries (body, caption, emoji...), empty when it has none.
    pub fn main_text(&self) -> &str {
        match self {
            OutgoingMessage::Text { body }
            | OutgoingMessage::Buttons { body, .. }
            | OutgoingMessage::List { body, .. } => body,
            OutgoingMessage::Reaction { emoji, .. } => emoji,
            OutgoingMessage::Image { caption, .. } | OutgoingMessage::Document { caption, .. } => {
                caption.as_deref().unwrap_or_default()
            }
            OutgoingMessage::Location { name, .. } => name.as_deref().unwrap_or_default(),
            OutgoingMessage::Template { name, .. } => name,
        }
    }

    /// What conversation memory keeps of it: [`describe`](Self::describe), with the id of
    /// each button or row that says more than its title, so the agent can tell which one a
    /// tap (which comes back as the title) meant.
    pub fn memory_text(&self) -> String {
        match self {
            OutgoingMessage::Buttons { body, buttons } => {
                format!("{body}\n[buttons: {}]", labelled(buttons))
            }
            OutgoingMessage::List { body, button, rows } => {
                format!("{body}\n[list \"{button}\": {}]", labelled(rows))
            }
            other => other.describe(),
        }
    }

    /// How the message reads in a text-only view (the console, `wagate chat`, memory): the
    /// text itself for a text message, else a short bracketed description and its text.
    pub fn describe(&self) -> String {
        match self {
            OutgoingMessage::Text { body } => body.clone(),
            OutgoingMessage::Buttons { body, buttons } => {
                format!("{body}\n[buttons: {}]", titles(buttons))
            }
            OutgoingMessage::List { body, button, rows } => {
                format!("{body}\n[list \"{button}\": {}]", titles(rows))
            }
            OutgoingMessage::Reaction { emoji, .. } => format!("[reaction {emoji}]"),
            OutgoingMessage::Image { link, caption } => with_caption("image", link, caption),
            OutgoingMessage::Document {
                link,
                caption,
                filename,
            } => {
                let what = match filename {
                    Some(name) => format!("document {name}"),
                    None => "document".to_owned(),
                };
                with_caption(&what, link, caption)
            }
            OutgoingMessage::Location {
                latitude,
                longitude,
                name,
                address,
            } => {
                let place: Vec<&str> = [name.as_deref(), address.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if place.is_empty() {
                    format!("[location ({latitude}, {longitude})]")
                } else {
                    format!("[location: {} ({latitude}, {longitude})]", place.join(", "))
                }
            }
            OutgoingMessage::Template { name, language, .. } => {
                format!("[template {name} ({language})]")
            }
        }
    }

    /// The JSON body of `POST /{phone_number_id}/messages` sending this message to `to`,
    /// quoting `reply_to` (a wamid) when given, with `biz_opaque_callback_data` when given.
    /// Reactions never quote: they name their message themselves.
    pub fn request_body(
        &self,
        to: &str,
        reply_to: Option<&str>,
        callback_data: Option<&str>,
    ) -> Value {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": self.graph_type(),
        });
        let (field, content) = self.content();
        body[field] = content;
        if let Some(message_id) = reply_to.filter(|_| self.may_quote()) {
            body["context"] = json!({ "message_id": message_id });
        }
        if let Some(data) = callback_data {
            body["biz_opaque_callback_data"] = json!(data);
        }
        body
    }

    /// Whether the message may carry a `context` (quote). Reactions name their message in
    /// `reaction.message_id`; templates are not replies.
    pub fn may_quote(&self) -> bool {
        !matches!(
            self,
            OutgoingMessage::Reaction { .. } | OutgoingMessage::Template { .. }
        )
    }

    /// The type's object: (field name, value).
    fn content(&self) -> (&'static str, Value) {
        match self {
            OutgoingMessage::Text { body } => {
                ("text", json!({ "body": body, "preview_url": false }))
            }
            OutgoingMessage::Buttons { body, buttons } => {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                    .collect();
                (
                    "interactive",
                    json!({
                        "type": "button",
                        "body": { "text": body },
                        "action": { "buttons": buttons },
                    }),
                )
            }
            OutgoingMessage::List { body, button, rows } => {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|row| {
                        let mut value = json!({"id": row.id, "title": row.title});
                        if let Some(description) = &row.description {
                            value["description"] = json!(description);
                        }
                        value
                    })
                    .collect();
                (
                    "interactive",
                    json!({
                        "type": "list",
                        "body": { "text": body },
                        "action": { "button": button, "sections": [{ "rows": rows }] },
                    }),
                )
            }
            OutgoingMessage::Reaction { message_id, emoji } => (
                "reaction",
                json!({ "message_id": message_id, "emoji": emoji }),
            ),
            OutgoingMessage::Image { link, caption } => {
                let mut image = json!({ "link": link });
                if let Some(caption) = caption {
                    image["caption"] = json!(caption);
                }
                ("image", image)
            }
            OutgoingMessage::Document {
                link,
                caption,
                filename,
            } => {
                let mut document = json!({ "link": link });
                if let Some(caption) = caption {
                    document["caption"] = json!(caption);
                }
                if let Some(filename) = filename {
                    document["filename"] = json!(filename);
                }
                ("document", document)
            }
            OutgoingMessage::Location {
                latitude,
                longitude,
                name,
                address,
            } => {
                let mut location = json!({ "latitude": latitude, "longitude": longitude });
                if let Some(name) = name {
                    location["name"] = json!(name);
                }
                if let Some(address) = address {
                    location["address"] = json!(address);
                }
                ("location", location)
            }
            OutgoingMessage::Template {
                name,
                language,
                components,
            } => {
                let mut template = json!({ "name": name, "language": { "code": language } });
                if !components.is_empty() {
                    template["components"] = json!(components);
                }
                ("template", template)
            }
        }
    }
}

fn titles(choices: &[Choice]) -> String {
    choices
        .iter()
        .map(|c| c.title.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn labelled(choices: &[Choice]) -> String {
    choices
        .iter()
        .map(Choice::labelled)
        .collect::<Vec<_>>()
        .join(" | ")
}

fn with_caption(what: &str, link: &str, caption: &Option<String>) -> String {
    match caption {
        Some(caption) => format!("[{what}: {link}] {caption}"),
        None => format!("[{what}: {link}]"),
    }
}

#[cfg(test)]
mod tests;
