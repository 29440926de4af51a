//! What the model sees for each inbound message, and what memory keeps of it.
//!
//! A turn runs three steps over its messages, in arrival order:
//! 1. [`describe`] each message's [`MessageKind`] (read by `whatsapp::payload`, the one reader
//!    of Meta's message types): text, a media request, or nothing (reactions, revokes).
//! 2. Resolve each media request (download through the Graph API, maybe transcribe) and turn
//!    the outcome into a [`ResolvedPart`] with [`resolve_media`]; texts become
//!    [`ResolvedPart::Text`] as they are.
//! 3. [`combine`] the parts into ONE user message for the model (images attached as bytes)
//!    and one text for memory (images as `[Image] caption`, never bytes).
//!
//! Blank fields say nothing: a message this module cannot describe is told to the model as
//! unsupported or skipped, never an error.

mod combine;
mod media;
mod structured;

pub use crate::whatsapp::payload::MediaKind;
pub use combine::{combine, memory_text, ResolvedPart, UserInput};
pub use media::{media_description, resolve_media, voice_transcript, MediaOutcome};

use crate::inbox::InboundRecord;
use crate::whatsapp::payload::{self, MessageKind};

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

/// What one inbound message becomes for the model (the README's table "An inbound message
/// becomes"), read from the message object Meta sent.
pub fn describe(record: &InboundRecord) -> InputPart {
    describe_kind(&MessageKind::read(&record.raw))
}

/// What a message's content becomes for the model.
pub fn describe_kind(kind: &MessageKind) -> InputPart {
    if let Some((media_kind, media)) = kind.media() {
        return media::request(media_kind, media);
    }
    match kind {
        MessageKind::Text { body } => text_part(Some(body)),
        MessageKind::Location(location) => InputPart::Text(structured::location(location)),
        MessageKind::Contacts(cards) => InputPart::Text(structured::contacts(cards)),
        MessageKind::Order(order) => InputPart::Text(structured::order(order)),
        MessageKind::Interactive(reply) => structured::interactive(reply),
        // A quick-reply button on a template: the text the user tapped.
        MessageKind::Button { text, payload } => {
            text_part(non_blank(text).or(payload.as_deref().and_then(non_blank)))
        }
        MessageKind::System(event) => match event.body.as_deref().and_then(non_blank) {
            Some(notice) => InputPart::Text(format!("[System notice: {notice}]")),
            None => InputPart::Skip,
        },
        MessageKind::Edit { new, .. } => edited(new),
        // The user opened the chat for the first time: the moment for a welcome message.
        MessageKind::RequestWelcome => InputPart::Text("[The user opened the chat]".into()),
        MessageKind::Unsupported { .. } => InputPart::Text(UNSUPPORTED.into()),
        // Meta's own `unknown` type: content it could not deliver.
        MessageKind::Unknown { type_name, .. } if type_name == "unknown" => {
            InputPart::Text(UNSUPPORTED.into())
        }
        // Reactions and deleted messages are recorded only; types newer than this code have
        // nothing to say.
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
    payload::reaction_of(&record.raw)
}

/// An edit carries the new version of an earlier message: the model sees it marked as such.
/// An edit whose new content cannot be read says nothing.
fn edited(new: &MessageKind) -> InputPart {
    if matches!(new, MessageKind::Unknown { .. }) {
        return InputPart::Skip;
    }
    let text = match describe_kind(new) {
        InputPart::Text(text) => text,
        InputPart::Media(request) => media_description(&request, None, None),
        InputPart::Skip => return InputPart::Skip,
    };
    InputPart::Text(format!("[Edited message] {text}"))
}

fn text_part(text: Option<&str>) -> InputPart {
    match text.and_then(non_blank) {
        Some(text) => InputPart::Text(text.to_owned()),
        None => InputPart::Skip,
    }
}

/// `text` when it holds something other than whitespace.
fn non_blank(text: &str) -> Option<&str> {
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests_describe;
#[cfg(test)]
mod tests_resolve;
