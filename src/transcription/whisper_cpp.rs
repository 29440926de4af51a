//! A whisper.cpp server (`whisper-server`): `POST {endpoint}/inference`, multipart `file`,
//! `response_format=json`, optional `language` (else `auto`) and `prompt`; no model field (the
//! server runs the model it was started with). The reply is `{"text": ...}`.
//!
//! Its decoder reads WAV only unless the server was started with `--convert` (then ffmpeg turns
//! any input into WAV). WhatsApp voice notes are Ogg/Opus, so without `--convert` every one
//! fails with `{"error": "failed to read WAV file"}` (older servers, often with status 200) or
//! `failed to read audio data` (newer ones): that answer becomes
//! [`TranscriptionError::Undecodable`], whose message names the fix.

use super::{file_part, text_of, TranscriptionError, Upload};
use bytes::Bytes;
use reqwest::multipart::Form;
use serde_json::Value as Json;

pub(super) async fn transcribe(
    upload: &Upload<'_>,
    audio: Bytes,
    essence: &str,
) -> Result<String, TranscriptionError> {
    let spec = upload.spec;
    // whisper-server defaults to English; `auto` detects the language (English-only models
    // ignore it).
    let language = spec.language.clone().unwrap_or_else(|| "auto".into());
    let mut form = Form::new()
        .part("file", file_part(audio, essence))
        .text("response_format", "json")
        .text("language", language);
    if let Some(prompt) = &spec.prompt {
        form = form.text("prompt", prompt.clone());
    }
    let (status, body) = upload.post("inference", form).await?;
    // whisper-server reports some errors with status 200: the body decides.
    let error = serde_json::from_str::<Json>(&body)
        .ok()
        .and_then(|json| json.get("error").cloned());
    if error.is_some() || !(200..300).contains(&status) {
        let message = upload.message(&body, status);
        if cannot_decode(&message) {
            return Err(TranscriptionError::Undecodable {
                status,
                message,
                mime_type: essence.to_owned(),
            });
        }
        return Err(TranscriptionError::Rejected { status, message });
    }
    text_of(&body)
}

/// `failed to read WAV file`, `failed to read audio data`, `failed to read audio file`.
fn cannot_decode(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("failed to read") && (message.contains("wav") || message.contains("audio"))
}

#[cfg(test)]
mod tests {
    use super::cannot_decode;

    #[test]
    fn the_decoder_errors_of_old_and_new_servers_are_recognised() {
        assert!(cannot_decode("failed to read WAV file"));
        assert!(cannot_decode("failed to read audio data"));
        assert!(!cannot_decode("FFmpeg conversion failed."));
        assert!(!cannot_decode("failed to process audio"));
    }
}
