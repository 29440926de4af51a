//! Inbound media: `GET /{media_id}` for the short-lived URL, then the download, in memory only.
//!
//! The download carries the access token, so the URL must be one the Graph API itself returned:
//! [`MediaInfo`] has a private field and is only built from Graph's answer in
//! [`GraphClient::media`], so a URL from a webhook body (or anywhere else) cannot reach
//! [`GraphClient::download`]. When the Graph base is https, a plain-http media URL is refused too.
//!
//! Size limits are enforced twice: before the request from the size Graph declared (and the
//! `Content-Length`), and while streaming, so a server that lies cannot make us buffer more than
//! the limit.

use super::client::{api_error, log_failure, GraphClient};
use super::error::GraphError;
use super::retry::{with_retries, Retryable};
use crate::config::MediaLimits;
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::time::Duration;

/// Most bytes of an error answer's body read from a media server (for its Graph error fields).
const ERROR_BODY_CAP: usize = 64 * 1024;

/// The media types WhatsApp users can send (Meta's types live in the payload); each has its
/// own download limit.
pub use crate::whatsapp::payload::MediaKind;

impl MediaKind {
    /// The kind for a webhook message `type` (`image`, `audio`, ...), if it carries media.
    pub fn from_message_type(message_type: &str) -> Option<Self> {
        Some(match message_type {
            "image" => MediaKind::Image,
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "document" => MediaKind::Document,
            "sticker" => MediaKind::Sticker,
            _ => return None,
        })
    }

    /// The configured download limit for this kind, in bytes.
    pub fn max_bytes(self, limits: &MediaLimits) -> u64 {
        match self {
            MediaKind::Image => limits.image,
            MediaKind::Audio => limits.audio,
            MediaKind::Video => limits.video,
            MediaKind::Document => limits.document,
            MediaKind::Sticker => limits.sticker,
        }
    }
}

/// What `GET /{media_id}` says about a media object. Only the Graph client can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// The media id.
    pub id: String,
    /// Where to download it (with the bearer header), valid for about 5 minutes.
    pub url: String,
    /// e.g. `image/jpeg`; empty when Graph did not say.
    pub mime_type: String,
    /// Hash Graph reports for the file (not checked: its encoding is not documented firmly).
    pub sha256: Option<String>,
    /// Declared size in bytes (Meta sends a number or a numeric string).
    pub file_size: Option<u64>,
    /// Private: proves the URL came from the Graph API, the only place the token may go.
    origin: GraphAnswer,
}

/// Marker that a [`MediaInfo`] was read from Graph's answer (it cannot be built elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
struct GraphAnswer;

/// Why a media object could not be fetched. The message can still be answered from its caption.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Dry run: media is never fetched (no token to fetch it with).
    #[error("media is not fetched in dry run")]
    DryRun,
    /// `GET /{media_id}` failed.
    #[error("media metadata request failed: {0}")]
    Metadata(GraphError),
    /// The download itself failed.
    #[error("media download failed: {0}")]
    Download(GraphError),
    /// Graph (or `Content-Length`) declared a size over the limit; nothing was downloaded.
    #[error("media declares {declared} bytes, over the {limit}-byte limit")]
    DeclaredTooLarge { declared: u64, limit: u64 },
    /// The body grew past the limit while streaming; the download was abandoned.
    #[error("media is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// The media URL Graph returned is not one the token may be sent to.
    #[error("media URL refused: {0}")]
    UnsafeUrl(&'static str),
}

impl Retryable for MediaError {
    fn is_retryable(&self) -> bool {
        match self {
            MediaError::Metadata(e) | MediaError::Download(e) => e.is_retryable(),
            _ => false,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        self.graph().and_then(Retryable::retry_after)
    }
    fn code(&self) -> Option<i64> {
        self.graph().and_then(GraphError::code)
    }
    fn http_status(&self) -> Option<u16> {
        self.graph().and_then(Retryable::http_status)
    }
}

impl MediaError {
    /// The Graph error underneath, if any.
    pub fn graph(&self) -> Option<&GraphError> {
        match self {
            MediaError::Metadata(e) | MediaError::Download(e) => Some(e),
            _ => None,
        }
    }
}

impl GraphClient {
    /// The download limit for `kind` from this channel's `media_max_bytes`.
    pub fn media_limit(&self, kind: MediaKind) -> u64 {
        kind.max_bytes(&self.inner.media_limits)
    }

    /// Looks up a media object: its short-lived URL, MIME type and declared size.
    pub async fn media(&self, media_id: &str) -> Result<MediaInfo, MediaError> {
        if self.inner.dry_run {
            return Err(MediaError::DryRun);
        }
        let url = self
            .endpoint(media_id, None)
            .map_err(MediaError::Metadata)?;
        let policy = &self.inner.options.media_retry;
        let metrics = &*self.metrics;
        let answer = with_retries(policy, "media_metadata", metrics, |_| self.get_json(&url))
            .await
            .inspect_err(|err| log_failure("media_metadata", err))
            .map_err(MediaError::Metadata)?;
        parse_media_info(media_id, &answer).map_err(MediaError::Metadata)
    }

    /// Downloads the media at once (the URL expires), refusing anything over `max_bytes`.
    pub async fn download(&self, info: &MediaInfo, max_bytes: u64) -> Result<Bytes, MediaError> {
        if self.inner.dry_run {
            return Err(MediaError::DryRun);
        }
        if let Some(declared) = info.file_size.filter(|size| *size > max_bytes) {
            return Err(MediaError::DeclaredTooLarge {
                declared,
                limit: max_bytes,
            });
        }
        self.check_media_url(&info.url)?;
        let policy = &self.inner.options.media_retry;
        let metrics = &*self.metrics;
        with_retries(policy, "media_download", metrics, |_| {
            self.download_once(info, max_bytes)
        })
        .await
    }

    /// [`media`](Self::media) then [`download`](Self::download).
    pub async fn fetch_media(
        &self,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<(MediaInfo, Bytes), MediaError> {
        let info = self.media(media_id).await?;
        let bytes = self.download(&info, max_bytes).await?;
        Ok((info, bytes))
    }

    fn check_media_url(&self, url: &str) -> Result<(), MediaError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| MediaError::UnsafeUrl("not a URL"))?;
        match parsed.scheme() {
            "https" => Ok(()),
            // Only a plain-http Graph base (a local fake) may hand out plain-http media URLs.
            "http" if !self.inner.https_only => Ok(()),
            _ => Err(MediaError::UnsafeUrl(
                "not https: the access token would travel in clear",
            )),
        }
    }

    async fn download_once(&self, info: &MediaInfo, max_bytes: u64) -> Result<Bytes, MediaError> {
        let request = self
            .authorized(self.inner.http.get(&info.url))
            .timeout(self.inner.options.download_timeout);
        let failed = |e| MediaError::Download(GraphError::from_transport(e));
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let headers = response.headers().clone();
            let body = read_capped(&mut response, ERROR_BODY_CAP).await;
            return Err(MediaError::Download(api_error(status, &headers, &body)));
        }
        if let Some(declared) = response.content_length().filter(|len| *len > max_bytes) {
            return Err(MediaError::DeclaredTooLarge {
                declared,
                limit: max_bytes,
            });
        }
        let expected = info.file_size.or(response.content_length()).unwrap_or(0);
        let mut buffer = BytesMut::with_capacity(capacity(expected.min(max_bytes)));
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if (buffer.len() + chunk.len()) as u64 > max_bytes {
                // Dropping the response closes the connection: we stop reading right here.
                return Err(MediaError::TooLarge { limit: max_bytes });
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }
}

/// Up to `cap` bytes of a body; errors end the read (it is only used for error details).
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

fn capacity(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Reads Graph's media answer; `file_size` (and `id`) may be numbers or numeric strings.
fn parse_media_info(media_id: &str, answer: &Value) -> Result<MediaInfo, GraphError> {
    let bad = |reason: &str| GraphError::BadResponse {
        status: 200,
        reason: reason.into(),
    };
    let url = answer
        .get("url")
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty())
        .ok_or_else(|| bad("no url in the media answer"))?;
    let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = match answer.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => media_id.to_owned(),
    };
    let file_size = match answer.get("file_size") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(MediaInfo {
        id,
        url: url.to_owned(),
        mime_type: text("mime_type").unwrap_or_default(),
        sha256: text("sha256"),
        file_size,
        origin: GraphAnswer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_media_answer_with_a_string_file_size_is_read() {
        // The corpus vector `media_url_response.json`, verbatim.
        let raw = r#"{
  "messaging_product": "whatsapp",
  "url": "https://example.com/image.jpg",
  "mime_type": "image/jpeg",
  "sha256": "f1234567890",
  "file_size": "111",
  "id": "1234567890"
}"#;
        let answer: Value = serde_json::from_str(raw).unwrap();
        let info = parse_media_info("1234567890", &answer).unwrap();
        assert_eq!(info.file_size, Some(111));
        assert_eq!(info.mime_type, "image/jpeg");
        assert_eq!(info.url, "https://example.com/image.jpg");
    }

    #[test]
    fn a_media_answer_without_url_is_a_bad_response() {
        let answer = serde_json::json!({"id": 5, "file_size": 10});
        assert!(matches!(
            parse_media_info("5", &answer),
            Err(GraphError::BadResponse { .. })
        ));
    }

    #[test]
    fn every_media_message_type_has_its_own_limit() {
        let limits = MediaLimits::default();
        assert_eq!(
            MediaKind::from_message_type("image").map(|k| k.max_bytes(&limits)),
            Some(limits.image)
        );
        assert_eq!(
            MediaKind::from_message_type("sticker").map(|k| k.max_bytes(&limits)),
            Some(limits.sticker)
        );
        assert_eq!(MediaKind::from_message_type("text"), None);
    }
}
