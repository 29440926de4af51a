//! The turn's messages as the model will see them: text as is, media downloaded through the
//! Graph API (images go to the model; audio is transcribed when the agent configures it; other
//! media are described), failures described too, so a failed download or transcription never
//! loses the message.

use crate::agent::input::{self, InputPart, MediaKind, MediaOutcome, MediaRequest, ResolvedPart};
use crate::agent::runtime::remembered::MediaSource;
use crate::config::TranscriptionSpec;
use crate::inbox::{InboundRecord, Store, Turn};
use crate::llm::ImageData;
use crate::memory::MediaRef;
use crate::metrics::{MediaLabels, Metrics};
use crate::transcription::{self, Transcriber, TranscriptionError};
use crate::whatsapp::graph::{GraphClient, MediaError};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Speech to text for the turn's audio: the agent's `spec.transcription` and the transcriber.
pub(super) struct Speech<'a> {
    pub transcriber: &'a Transcriber,
    pub spec: &'a TranscriptionSpec,
}

pub(super) async fn resolve(
    graph: &GraphClient,
    store: &Store,
    metrics: &Metrics,
    turn: &Turn,
    speech: Option<&Speech<'_>>,
) -> Vec<ResolvedPart> {
    let mut parts = Vec::with_capacity(turn.messages.len());
    for record in &turn.messages {
        // A reaction reaches a turn only when the agent asked for them (intake decides).
        if record.kind == "reaction" {
            if let Some(text) = reaction(store, record).await {
                parts.push(ResolvedPart::Text(text));
            }
            continue;
        }
        match input::describe(record) {
            InputPart::Skip => {}
            InputPart::Text(text) => parts.push(ResolvedPart::Text(text)),
            InputPart::Media(request) => {
                let outcome = match (fetch(graph, metrics, &request).await, speech) {
                    (MediaOutcome::Downloaded { data, mime_type }, Some(speech))
                        if request.kind == MediaKind::Audio =>
                    {
                        transcribe(speech, &request, data, mime_type).await
                    }
                    (outcome, _) => outcome,
                };
                parts.push(input::resolve_media(&request, outcome));
            }
        }
    }
    parts
}

/// `[Reaction 👍 to your message: "…"]` quoting the message we sent; `None` (nothing for the
/// model) when it is a removal or not one of our messages.
async fn reaction(store: &Store, record: &InboundRecord) -> Option<String> {
    let (target, emoji) = input::reaction_of(record)?;
    match store.sent_message_text(target.to_owned()).await {
        Ok(Some(quoted)) => Some(input::reaction_text(emoji, &quoted)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the message a reaction is about; the model is not told");
            None
        }
    }
}

/// Remembered images downloaded again through the Graph API, for a later turn; the bytes stay
/// in memory (never on disk), like every download.
pub(super) struct GraphImages {
    pub graph: GraphClient,
    pub metrics: Arc<Metrics>,
}

impl MediaSource for GraphImages {
    fn fetch_image<'a>(
        &'a self,
        media: &'a MediaRef,
    ) -> Pin<Box<dyn Future<Output = Option<ImageData>> + Send + 'a>> {
        Box::pin(async move {
            let request = MediaRequest {
                media_id: media.media_id.clone(),
                kind: MediaKind::Image,
                mime_type: media.mime_type.clone(),
                caption: media.caption.clone(),
                filename: None,
                file_size: None,
                voice: false,
            };
            match input::resolve_media(&request, fetch(&self.graph, &self.metrics, &request).await)
            {
                ResolvedPart::Image { image, .. } => Some(image),
                ResolvedPart::Text(_) => None,
            }
        })
    }
}

/// A downloaded audio becomes its transcript; on failure, the description with a note saying
/// transcription failed (and why, briefly), while the log says why in full.
async fn transcribe(
    speech: &Speech<'_>,
    request: &MediaRequest,
    data: Bytes,
    mime_type: Option<String>,
) -> MediaOutcome {
    let mime_type = mime_type
        .or_else(|| request.mime_type.clone())
        .unwrap_or_default();
    let bytes = data.len();
    let provider = transcription::provider_label(speech.spec.provider);
    match speech
        .transcriber
        .transcribe(speech.spec, data, &mime_type)
        .await
    {
        Ok(text) if text.is_empty() => {
            tracing::info!(provider, bytes, "the audio holds no recognisable speech");
            MediaOutcome::NotTranscribed {
                bytes,
                note: "no speech recognised".into(),
            }
        }
        Ok(text) => {
            tracing::debug!(provider, bytes, transcript = %text, "audio transcribed");
            MediaOutcome::Transcribed(text)
        }
        Err(e) => {
            tracing::warn!(provider, bytes, outcome = e.outcome().as_str(), error = %e, "transcription failed; the model gets the attachment description");
            MediaOutcome::NotTranscribed {
                bytes,
                note: failure_note(&e),
            }
        }
    }
}

/// What the model reads in the description: enough to tell the customer what to do.
fn failure_note(error: &TranscriptionError) -> String {
    match error {
        TranscriptionError::TooLong { max_seconds, .. } => {
            format!("transcription failed: longer than {max_seconds} seconds")
        }
        TranscriptionError::Timeout { .. } => "transcription failed: timed out".into(),
        _ => "transcription failed".into(),
    }
}

/// Images are downloaded for the model; every other kind is downloaded too (its real size goes
/// into the description, and the limits protect us), then only described.
async fn fetch(
    graph: &GraphClient,
    metrics: &Metrics,
    request: &input::MediaRequest,
) -> MediaOutcome {
    let kind = request.kind;
    match graph
        .fetch_media(&request.media_id, graph.media_limit(kind))
        .await
    {
        Ok((info, data)) => {
            metrics
                .media_bytes
                .get_or_create(&MediaLabels {
                    kind: request.kind.name().to_owned(),
                })
                .inc_by(data.len() as u64);
            let mime_type = (!info.mime_type.is_empty()).then(|| info.mime_type.clone());
            MediaOutcome::Downloaded { data, mime_type }
        }
        Err(MediaError::DryRun) => MediaOutcome::Failed("not downloaded in dry run".into()),
        Err(e) => {
            tracing::warn!(kind = request.kind.name(), error = %e, "media download failed; the model gets a description");
            MediaOutcome::Failed(match e {
                MediaError::DeclaredTooLarge { .. } | MediaError::TooLarge { .. } => {
                    "too large".into()
                }
                _ => "download failed".into(),
            })
        }
    }
}
