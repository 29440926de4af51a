//! Speech to text for audio messages (voice notes included), per agent `spec.transcription`.
//!
//! The responder downloads the audio, then calls [`Transcriber::transcribe`]. Audio longer than
//! `max_seconds` is refused before it is uploaded (the duration is read from Ogg/Opus and WAV
//! files, else estimated from the size: see `audio.rs`). Two providers:
//! - `openai`: any OpenAI-compatible `POST {endpoint}/audio/transcriptions`;
//! - `whisper_cpp`: a whisper.cpp server's `POST {endpoint}/inference`.
//!
//! Every attempt is counted in `wagate_transcriptions_total{provider,outcome}`; uploads are
//! timed in `wagate_transcription_duration_seconds`, and the bytes of audio transcribed are
//! summed in `wagate_transcription_audio_bytes_total`. Transcripts are never logged.

mod audio;
mod error;
mod openai;
mod whisper_cpp;

pub use error::TranscriptionError;

use crate::config::{TranscriptionProvider, TranscriptionSpec};
use crate::metrics::{Metrics, ProviderLabels, TranscriptionLabels, TranscriptionOutcome};
use bytes::Bytes;
use reqwest::multipart::Part;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Transcribes audio with the provider an agent names. Cheap to clone: one shared HTTP client.
#[derive(Clone)]
pub struct Transcriber {
    http: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Transcriber {
    /// Uses `http` (shared with the rest of the process) for every upload; each request gets
    /// the spec's own `timeout_seconds`.
    pub fn new(http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        Transcriber { http, metrics }
    }

    /// The transcript of `audio` (trimmed; empty when the audio holds no speech). `mime_type`
    /// is the one Graph reported, parameters allowed (`audio/ogg; codecs=opus`).
    pub async fn transcribe(
        &self,
        spec: &TranscriptionSpec,
        audio: Bytes,
        mime_type: &str,
    ) -> Result<String, TranscriptionError> {
        let provider = provider_label(spec.provider);
        let result = self.attempt(spec, audio, mime_type).await;
        let outcome = match &result {
            Ok(_) => TranscriptionOutcome::Ok,
            Err(e) => e.outcome(),
        };
        self.metrics
            .transcriptions
            .get_or_create(&TranscriptionLabels {
                provider: provider.to_owned(),
                outcome,
            })
            .inc();
        result
    }

    async fn attempt(
        &self,
        spec: &TranscriptionSpec,
        audio: Bytes,
        mime_type: &str,
    ) -> Result<String, TranscriptionError> {
        let essence = audio::essence(mime_type);
        let seconds = audio::duration_seconds(&audio, &essence);
        if seconds > spec.max_seconds as f64 {
            return Err(TranscriptionError::TooLong {
                seconds: seconds.ceil() as u64,
                max_seconds: spec.max_seconds,
            });
        }
        let bytes = audio.len();
        let upload = Upload {
            http: &self.http,
            spec,
            timeout: Duration::from_secs(spec.timeout_seconds),
        };
        let provider = provider_label(spec.provider);
        let started = Instant::now();
        let result = match spec.provider {
            TranscriptionProvider::Openai => openai::transcribe(&upload, audio, &essence).await,
            TranscriptionProvider::WhisperCpp => {
                whisper_cpp::transcribe(&upload, audio, &essence).await
            }
        };
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.metrics
            .transcription_duration_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if result.is_ok() {
            self.metrics
                .transcription_audio_bytes
                .get_or_create(&labels)
                .inc_by(bytes as u64);
        }
        result.map(|text| text.trim().to_owned())
    }
}

/// The `provider` label, spelled as in the YAML.
pub fn provider_label(provider: TranscriptionProvider) -> &'static str {
    match provider {
        TranscriptionProvider::Openai => "openai",
        TranscriptionProvider::WhisperCpp => "whisper_cpp",
    }
}

/// What both providers need to send one request.
struct Upload<'a> {
    http: &'a reqwest::Client,
    spec: &'a TranscriptionSpec,
    timeout: Duration,
}

impl Upload<'_> {
    /// `{endpoint}/{path}`; the loader already removed a trailing slash from the endpoint.
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.spec.endpoint.trim_end_matches('/'))
    }

    /// POSTs the form (bearer `api_key` when set) and returns the status and the body text.
    async fn post(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> Result<(u16, String), TranscriptionError> {
        let mut request = self
            .http
            .post(self.url(path))
            .timeout(self.timeout)
            .multipart(form);
        if !self.spec.api_key.is_empty() {
            request = request.bearer_auth(self.spec.api_key.expose());
        }
        let seconds = self.spec.timeout_seconds;
        let response = request
            .send()
            .await
            .map_err(|e| TranscriptionError::from_reqwest(e, seconds))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| TranscriptionError::from_reqwest(e, seconds))?;
        Ok((status, body))
    }

    /// The server's error message, with an echo of the API key removed.
    fn message(&self, body: &str, status: u16) -> String {
        error::server_message(body, status, self.spec.api_key.expose())
    }
}

/// The `file` part: the audio under a name whose extension matches its type, with that type
/// (`application/octet-stream` when the type is missing or malformed).
fn file_part(audio: Bytes, essence: &str) -> Part {
    let length = audio.len() as u64;
    let name = audio::file_name(essence);
    let part = || Part::stream_with_length(audio.clone(), length).file_name(name);
    let opaque = "application/octet-stream";
    let mime = if essence.is_empty() { opaque } else { essence };
    part()
        .mime_str(mime)
        .or_else(|_| part().mime_str(opaque))
        .unwrap_or_else(|_| part())
}

/// A `{"text": ...}` answer.
#[derive(serde::Deserialize)]
struct TextAnswer {
    text: String,
}

fn text_of(body: &str) -> Result<String, TranscriptionError> {
    serde_json::from_str::<TextAnswer>(body)
        .map(|answer| answer.text)
        .map_err(|e| TranscriptionError::BadAnswer(format!("expected {{\"text\": ...}}: {e}")))
}
