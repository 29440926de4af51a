//! Images the customer sent in an earlier turn, shown to the model again: memory keeps each
//! image's Graph API media id and metadata (never the bytes), and a later turn downloads the
//! newest one again so "what about the photo I sent?" two messages later still works.
//!
//! Bounded on purpose, since an image costs a download and about 2,000 tokens per request:
//! - only the newest remembered image of the memory window ([`MAX_REMEMBERED_IMAGES`]), and
//!   none when the customer's new message carries an image of its own;
//! - only when the agent's routing can take images ([`crate::llm::Router::sees_images`]);
//! - only within Meta's lifetime of an inbound media id
//!   ([`crate::memory::MEDIA_ID_LIFETIME_SECS`]); a failed download leaves the text as it was.

use crate::llm::ImageData;
use crate::memory::{MediaRef, MemoryEntry, MemoryRole, MEDIA_ID_LIFETIME_SECS};
use std::future::Future;
use std::pin::Pin;

/// How many remembered images one request carries at most.
pub const MAX_REMEMBERED_IMAGES: usize = 1;

/// Downloads a remembered image again (the responder's: through the Graph API, bytes kept in
/// memory only).
pub trait MediaSource: Send + Sync {
    /// The image's bytes now, or `None` when it cannot be had (expired, deleted, Graph down).
    fn fetch_image<'a>(
        &'a self,
        media: &'a MediaRef,
    ) -> Pin<Box<dyn Future<Output = Option<ImageData>> + Send + 'a>>;
}

impl std::fmt::Debug for dyn MediaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaSource")
    }
}

/// Which history entry gets which image: the newest user entry with an image that is young
/// enough, and its last image. `None` when there is nothing to show again.
pub fn pick(history: &[MemoryEntry], now: i64) -> Option<(usize, &MediaRef)> {
    let oldest = now.saturating_sub(MEDIA_ID_LIFETIME_SECS);
    history
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| e.role == MemoryRole::User && e.created_at >= oldest)
        .find_map(|(i, e)| e.media.last().map(|m| (i, m)))
}

/// The images to attach to history entries, as (entry index, images).
pub async fn fetch(
    source: &dyn MediaSource,
    history: &[MemoryEntry],
    now: i64,
) -> Vec<(usize, Vec<ImageData>)> {
    let Some((index, media)) = pick(history, now) else {
        return Vec::new();
    };
    match source.fetch_image(media).await {
        Some(image) => vec![(index, vec![image])],
        None => {
            tracing::debug!(
                "a remembered image could not be downloaded again; the model gets its description"
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_image(content: &str, at: i64, id: &str) -> MemoryEntry {
        MemoryEntry::user(content, at).with_media(vec![MediaRef {
            media_id: id.into(),
            mime_type: Some("image/jpeg".into()),
            caption: None,
        }])
    }

    #[test]
    fn the_newest_young_enough_image_of_the_window_is_chosen() {
        let now = 1_800_000_000;
        let history = vec![
            with_image("[Image] old", now - 100, "first"),
            MemoryEntry::assistant("nice", now - 90),
            with_image("[Image] newer", now - 80, "second"),
            MemoryEntry::user("what colour is it?", now - 10),
        ];
        let (index, media) = pick(&history, now).expect("an image");
        assert_eq!((index, media.media_id.as_str()), (2, "second"));
    }

    #[test]
    fn an_image_older_than_metas_media_id_lifetime_is_not_fetched_again() {
        let now = 1_800_000_000;
        let history = vec![with_image(
            "[Image]",
            now - MEDIA_ID_LIFETIME_SECS - 1,
            "gone",
        )];
        assert!(pick(&history, now).is_none());
        let history = vec![MemoryEntry::user("no image here", now)];
        assert!(pick(&history, now).is_none());
    }
}
