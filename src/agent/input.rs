//! What the model sees for each inbound message, and what memory keeps of it.
//!
//! The lead's turn runs three steps over the turn's messages, in arrival order:
//! 1. [`describe`] each raw message: text, a media request, or nothing (reactions, revokes).
//! 2. Resolve each media request (download through the Graph API, maybe transcribe) and turn
//!    the outcome into a [`ResolvedPart`] with [`resolve_media`]; texts become
//!    [`ResolvedPart::Text`] as they are.
//! 3. [`combine`] the parts into ONE user message for the model (images attached as bytes)
//!    and one text for memory (images as `[Image] caption`, never bytes).
//!
//! Fields are read straight from Meta's JSON, tolerating missing or oddly typed fields: a
//! message this module does not understand is described as unsupported or skipped, never an
//! error.

mod combine;
mod media;
mod structured;

pub use combine::{combine, memory_text, ResolvedPart, UserInput};
pub use media::{media_description, resolve_media, voice_transcript, MediaOutcome};

use crate::inbox::InboundRecord;
use serde_json::Value as Json;

/// What one inbound message contributes to the turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPart {
    /// Text the model reads as the user's words.
    Text(String),
    /// Media the caller downloads (and maybe transcribes), then passes to [`resolve_media`].
    Media(MediaRequest),
    /// Recorded, but nothing for the model: reactions, deleted messages, unknown types. A turn
    /// whose messages are all skipped gets no reply.
    Skip,
}

/// The kinds of media WhatsApp delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    fn from_type(kind: &str) -> Option<MediaKind> {
        match kind {
            "image" => Some(MediaKind::Image),
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            "document" => Some(MediaKind::Document),
            "sticker" => Some(MediaKind::Sticker),
            _ => None,
        }
    }
}

/// A media attachment as the webhook declared it; everything but the id is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRequest {
    /// The Graph API media id (`GET /{media_id}` gives the download URL).
    pub media_id: String,
    /// Which of WhatsApp's media types this is.
    pub kind: MediaKind,
    /// As sent, parameters included (`audio/ogg; codecs=opus`).
    pub mime_type: Option<String>,
    /// The text the user typed under the media (images, videos, documents).
    pub caption: Option<String>,
    /// Documents only.
    pub filename: Option<String>,
    /// Declared size, when the webhook carries one.
    pub file_size: Option<u64>,
    /// An audio message recorded as a voice note (push-to-talk).
    pub voice: bool,
}

/// Message types Meta names in `type`, in the order used to guess a missing `type` from the
/// fields present (some senders omit it).
const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "order",
    "reaction",
    "system",
    "edit",
    "revoke",
];

/// What one inbound message becomes for the model, per the contract.
pub fn describe(record: &InboundRecord) -> InputPart {
    describe_message(&record.kind, &record.raw)
}

/// Describes a message object; `kind` is the recorded type, `raw` the object Meta sent.
fn describe_message(kind: &str, raw: &Json) -> InputPart {
    let kind = effective_type(kind, raw);
    if let Some(media_kind) = MediaKind::from_type(kind) {
        return media::request(media_kind, raw.get(kind));
    }
    let body = raw.get(kind);
    match kind {
        "text" => text_part(body.and_then(|t| str_field(t, "body"))),
        "location" => InputPart::Text(structured::location(body)),
        "contacts" => InputPart::Text(structured::contacts(body)),
        "order" => InputPart::Text(structured::order(body)),
        "interactive" => structured::interactive(body),
        // A quick-reply button on a template: the text the user tapped.
        "button" => text_part(body.and_then(|b| str_field(b, "text").or(str_field(b, "payload")))),
        "system" => match body.and_then(|s| str_field(s, "body")) {
            Some(notice) => InputPart::Text(format!("[System notice: {notice}]")),
            None => InputPart::Skip,
        },
        "edit" => edited(body),
        // The user opened the chat for the first time: the moment for a welcome message.
        "request_welcome" => InputPart::Text("[The user opened the chat]".into()),
        "unsupported" | "unknown" => InputPart::Text(UNSUPPORTED.into()),
        // Reactions and deleted messages are recorded only; other types have nothing to say.
        _ => InputPart::Skip,
    }
}

const UNSUPPORTED: &str = "[Unsupported message]";

/// The longest quote of our own message in a reaction line, in characters.
const REACTION_QUOTE_CHARS: usize = 200;

/// What the model reads when the customer reacted to one of its messages (agents with
/// `spec.whatsapp.reactions_to_agent`): `[Reaction 👍 to your message: "…"]`, the quote on
/// one line and cut to 200 characters.
pub fn reaction_text(emoji: &str, quoted: &str) -> String {
    let one_line = quoted.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut quote: String = one_line.chars().take(REACTION_QUOTE_CHARS).collect();
    if quote.len() < one_line.len() {
        quote.push('…');
    }
    format!("[Reaction {emoji} to your message: \"{quote}\"]")
}

/// The reacted message's id and the emoji of a reaction message; `None` for a removal.
pub fn reaction_of(record: &InboundRecord) -> Option<(&str, &str)> {
    let reaction = record.raw.get("reaction")?;
    let target = str_field(reaction, "message_id")?;
    let emoji = str_field(reaction, "emoji")?;
    Some((target, emoji.trim()))
}

/// An edit carries the new version of an earlier message: the model sees it marked as such.
fn edited(edit: Option<&Json>) -> InputPart {
    let Some(message) = edit.and_then(|e| e.get("message")) else {
        return InputPart::Skip;
    };
    let inner_type = str_field(message, "type").unwrap_or_default();
    let text = match describe_message(inner_type, message) {
        InputPart::Text(text) => text,
        InputPart::Media(request) => media_description(&request, None, None),
        InputPart::Skip => return InputPart::Skip,
    };
    InputPart::Text(format!("[Edited message] {text}"))
}

/// The recorded type when it is one we know, else `type` in the JSON, else the first known
/// type whose field is present.
fn effective_type<'a>(recorded: &'a str, raw: &'a Json) -> &'a str {
    let named = [recorded, str_field(raw, "type").unwrap_or_default()];
    if let Some(kind) = named
        .into_iter()
        .find(|k| !k.is_empty() && *k != "unknown" && raw.get(*k).is_some())
    {
        return kind;
    }
    if let Some(kind) = KNOWN_TYPES.iter().find(|k| raw.get(**k).is_some()) {
        return kind;
    }
    named
        .into_iter()
        .find(|k| !k.is_empty())
        .unwrap_or("unknown")
}

fn text_part(text: Option<&str>) -> InputPart {
    match text {
        Some(text) => InputPart::Text(text.to_owned()),
        None => InputPart::Skip,
    }
}

/// A string field that holds something other than whitespace.
fn str_field<'a>(value: &'a Json, field: &str) -> Option<&'a str> {
    value
        .get(field)
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A field Meta sends as a number or as a string (coordinates, quantities, prices, sizes).
fn scalar_field(value: &Json, field: &str) -> Option<String> {
    match value.get(field)? {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests_describe;
#[cfg(test)]
mod tests_resolve;
