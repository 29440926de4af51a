//! Several pending messages of one turn become one user message for the model, and one text
//! for memory.

use crate::llm::{ChatMessage, ImageData};
use crate::memory::MediaRef;

/// One message of the turn, ready for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedPart {
    /// The user's words, or a description standing in for them.
    Text(String),
    /// A downloaded image, sent to the model as itself.
    Image {
        /// The bytes, for vision models only; memory never sees them.
        image: ImageData,
        /// The text the user typed under the image.
        caption: Option<String>,
        /// The Graph API media id, for memory to download it again in a later turn.
        media_id: Option<String>,
    },
}

impl From<String> for ResolvedPart {
    fn from(text: String) -> Self {
        ResolvedPart::Text(text)
    }
}

/// The user's side of a turn: what the model reads, and what memory keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    /// One user message: texts in arrival order, one per line; images attached.
    pub message: ChatMessage,
    /// The same message as memory stores it: images as `[Image] caption`, never bytes.
    pub memory_text: String,
    /// The images' media ids and metadata, for memory (never the bytes).
    pub media: Vec<MediaRef>,
}

/// What memory stores for one part: the text, or `[Image] caption` for an image.
pub fn memory_text(part: &ResolvedPart) -> String {
    match part {
        ResolvedPart::Text(text) => text.clone(),
        ResolvedPart::Image {
            caption: Some(caption),
            ..
        } => format!("[Image] {caption}"),
        ResolvedPart::Image { caption: None, .. } => "[Image]".into(),
    }
}

/// Joins the parts of a turn, in arrival order, into one user message. An image with a
/// caption reads as its caption next to the attached image; one without reads `[Image]`, so
/// the model knows where in the conversation the picture came.
pub fn combine(parts: Vec<ResolvedPart>) -> UserInput {
    let memory_text = parts.iter().map(memory_text).collect::<Vec<_>>().join("\n");
    let mut lines = Vec::with_capacity(parts.len());
    let mut images = Vec::new();
    let mut media = Vec::new();
    for part in parts {
        match part {
            ResolvedPart::Text(text) => lines.push(text),
            ResolvedPart::Image {
                image,
                caption,
                media_id,
            } => {
                if let Some(media_id) = media_id {
                    media.push(MediaRef {
                        media_id,
                        mime_type: Some(image.mime_type.clone()),
                        caption: caption.clone(),
                    });
                }
                lines.push(caption.unwrap_or_else(|| "[Image]".into()));
                images.push(image);
            }
        }
    }
    let mut message = ChatMessage::user(lines.join("\n"));
    message.images = images;
    UserInput {
        message,
        memory_text,
        media,
    }
}
