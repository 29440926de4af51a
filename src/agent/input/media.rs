//! Media messages: the request read from the webhook, its text description, and what a
//! download (or its failure, or a transcript) turns it into.

use super::{non_blank, InputPart, MediaKind, MediaRequest, ResolvedPart};
use crate::llm::ImageData;
use crate::whatsapp::payload::Media;
use bytes::Bytes;

/// What the caller got when it tried to fetch a media attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOutcome {
    /// The bytes, with the MIME type the Graph API reported (if any).
    Downloaded {
        data: Bytes,
        mime_type: Option<String>,
    },
    /// Not fetched on purpose (e.g. video is never downloaded): described from the webhook.
    NotDownloaded,
    /// Fetching failed; the short reason is shown to the model (`download failed`, `too large`).
    Failed(String),
    /// An audio message (voice note or not) that was transcribed.
    Transcribed(String),
    /// Audio downloaded but not transcribed (the provider failed, timed out, or the audio is
    /// too long): described with its real size and the `note`, so the message is never lost.
    NotTranscribed { bytes: usize, note: String },
}

/// A media attachment becomes a request. Without a media id nothing can be downloaded, so the
/// model gets the description at once.
pub(super) fn request(kind: MediaKind, media: &Media) -> InputPart {
    let words = |field: &Option<String>| field.as_deref().and_then(non_blank).map(str::to_owned);
    let request = MediaRequest {
        media_id: words(&media.id).unwrap_or_default(),
        kind,
        mime_type: words(&media.mime_type),
        caption: words(&media.caption),
        filename: words(&media.filename),
        file_size: media.file_size,
        voice: media.voice,
    };
    if request.media_id.is_empty() {
        return InputPart::Text(media_description(&request, None, Some("unavailable")));
    }
    InputPart::Media(request)
}

/// `[Attached audio: audio/ogg, 15234 bytes]`, plus `voice note` for one, `filename=` for documents, a `note` (such as
/// `download failed`) last, and the caption on the following line. The size is the downloaded
/// one, else the declared one, else left out.
pub fn media_description(
    request: &MediaRequest,
    downloaded_bytes: Option<usize>,
    note: Option<&str>,
) -> String {
    let mut details: Vec<String> = Vec::new();
    if let Some(mime) = request.mime_type.as_deref().map(essence) {
        if !mime.is_empty() {
            details.push(mime.to_owned());
        }
    }
    let size = downloaded_bytes.map(|n| n as u64).or(request.file_size);
    if let Some(size) = size {
        details.push(format!("{size} bytes"));
    }
    // A voice note keeps the audio prefix and says `voice note` after the size.
    if request.kind == MediaKind::Audio && request.voice {
        details.push("voice note".to_owned());
    }
    if request.kind == MediaKind::Document {
        if let Some(filename) = &request.filename {
            details.push(format!("filename={}", one_line(filename)));
        }
    }
    if let Some(note) = note {
        details.push(note.to_owned());
    }
    let label = request.kind.name();
    let mut text = if details.is_empty() {
        format!("[Attached {label}]")
    } else {
        format!("[Attached {label}: {}]", details.join(", "))
    };
    if let Some(caption) = &request.caption {
        text.push('\n');
        text.push_str(caption);
    }
    text
}

/// What the model gets for a media message once the caller has tried to fetch it: a
/// downloaded image itself (with its caption), a transcribed audio as `[Voice message] ...`
/// (with its caption), anything else a description.
pub fn resolve_media(request: &MediaRequest, outcome: MediaOutcome) -> ResolvedPart {
    match outcome {
        MediaOutcome::Downloaded { data, mime_type } if request.kind == MediaKind::Image => {
            let mime_type = mime_type
                .as_deref()
                .or(request.mime_type.as_deref())
                .map(essence)
                .filter(|m| !m.is_empty())
                .unwrap_or("image/jpeg")
                .to_owned();
            ResolvedPart::Image {
                image: ImageData { mime_type, data },
                caption: request.caption.clone(),
                media_id: Some(request.media_id.clone()),
            }
        }
        MediaOutcome::Downloaded { data, .. } => {
            ResolvedPart::Text(media_description(request, Some(data.len()), None))
        }
        MediaOutcome::NotDownloaded => ResolvedPart::Text(media_description(request, None, None)),
        MediaOutcome::Failed(note) => {
            ResolvedPart::Text(media_description(request, None, Some(&note)))
        }
        // Silence transcribes to nothing: the model gets the usual description instead.
        MediaOutcome::Transcribed(transcript) if transcript.trim().is_empty() => {
            ResolvedPart::Text(media_description(request, None, None))
        }
        MediaOutcome::Transcribed(transcript) => {
            let mut text = voice_transcript(&transcript);
            if let Some(caption) = &request.caption {
                text.push('\n');
                text.push_str(caption);
            }
            ResolvedPart::Text(text)
        }
        MediaOutcome::NotTranscribed { bytes, note } => {
            ResolvedPart::Text(media_description(request, Some(bytes), Some(&note)))
        }
    }
}

/// What the model sees for a transcribed audio message: `[Voice message] <transcript>`.
pub fn voice_transcript(transcript: &str) -> String {
    format!("[Voice message] {}", transcript.trim())
}

use crate::text::mime_essence as essence;

/// A user-chosen file name cannot break the description onto several lines.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
