//! The turn's messages as the model will see them: text as is, media downloaded through the
//! Graph API (images go to the model; other media are described), failures described too, so
//! a failed download never loses the message.

use crate::agent::input::{self, InputPart, MediaKind, MediaOutcome, ResolvedPart};
use crate::inbox::Turn;
use crate::metrics::Metrics;
use crate::whatsapp::graph::{self, GraphClient, MediaError};

pub(super) async fn resolve(
    graph: &GraphClient,
    metrics: &Metrics,
    turn: &Turn,
) -> Vec<ResolvedPart> {
    let mut parts = Vec::with_capacity(turn.messages.len());
    for record in &turn.messages {
        match input::describe(record) {
            InputPart::Skip => {}
            InputPart::Text(text) => parts.push(ResolvedPart::Text(text)),
            InputPart::Media(request) => {
                let outcome = fetch(graph, metrics, &request).await;
                parts.push(input::resolve_media(&request, outcome));
            }
        }
    }
    parts
}

/// Images are downloaded for the model; every other kind is downloaded too (its real size goes
/// into the description, and the limits protect us), then only described.
async fn fetch(
    graph: &GraphClient,
    metrics: &Metrics,
    request: &input::MediaRequest,
) -> MediaOutcome {
    let kind = graph_kind(request.kind);
    match graph
        .fetch_media(&request.media_id, graph.media_limit(kind))
        .await
    {
        Ok((info, data)) => {
            metrics.add(
                "wagate_media_bytes_total",
                &[("kind", kind_label(request.kind))],
                data.len() as f64,
            );
            let mime_type = (!info.mime_type.is_empty()).then(|| info.mime_type.clone());
            MediaOutcome::Downloaded { data, mime_type }
        }
        Err(MediaError::DryRun) => MediaOutcome::Failed("not downloaded in dry run".into()),
        Err(e) => {
            tracing::warn!(kind = kind_label(request.kind), error = %e, "media download failed; the model gets a description");
            MediaOutcome::Failed(match e {
                MediaError::DeclaredTooLarge { .. } | MediaError::TooLarge { .. } => {
                    "too large".into()
                }
                _ => "download failed".into(),
            })
        }
    }
}

fn graph_kind(kind: MediaKind) -> graph::MediaKind {
    match kind {
        MediaKind::Image => graph::MediaKind::Image,
        MediaKind::Audio => graph::MediaKind::Audio,
        MediaKind::Video => graph::MediaKind::Video,
        MediaKind::Document => graph::MediaKind::Document,
        MediaKind::Sticker => graph::MediaKind::Sticker,
    }
}

fn kind_label(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
        MediaKind::Document => "document",
        MediaKind::Sticker => "sticker",
    }
}
