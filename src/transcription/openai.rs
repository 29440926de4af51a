//! Any OpenAI-compatible speech-to-text server (OpenAI, Groq, faster-whisper-server, LocalAI,
//! vLLM): `POST {endpoint}/audio/transcriptions`, multipart `file` + `model`, optional
//! `language` and `prompt`, `response_format=json`; the reply is `{"text": ...}` and errors are
//! `{"error": {"message": ...}}`.

use super::{file_part, text_of, TranscriptionError, Upload};
use bytes::Bytes;
use reqwest::multipart::Form;

pub(super) async fn transcribe(
    upload: &Upload<'_>,
    audio: Bytes,
    essence: &str,
) -> Result<String, TranscriptionError> {
    let spec = upload.spec;
    // Validation requires a model for this provider; an empty one lets the server say so.
    let mut form = Form::new()
        .part("file", file_part(audio, essence))
        .text("model", spec.model.clone().unwrap_or_default())
        .text("response_format", "json");
    if let Some(language) = &spec.language {
        form = form.text("language", language.clone());
    }
    if let Some(prompt) = &spec.prompt {
        form = form.text("prompt", prompt.clone());
    }
    let (status, body) = upload.post("audio/transcriptions", form).await?;
    if !(200..300).contains(&status) {
        return Err(TranscriptionError::Rejected {
            status,
            message: upload.message(&body, status),
        });
    }
    text_of(&body)
}
