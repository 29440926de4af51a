//! What can go wrong when turning a voice note into text. Messages say why in words an operator
//! can act on, with the provider's own message, and never hold the API key (it travels in a
//! header only, and is scrubbed from anything the server echoes back) nor the request URL (a
//! `${VAR}`-expanded endpoint could carry a token in its query string).

/// One transcription did not produce a transcript. The message is still answered: the model
/// gets the attachment description with a note instead.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptionError {
    /// Refused before uploading: the audio is (or is estimated to be) longer than `max_seconds`.
    #[error(
        "audio of about {seconds} s is longer than max_seconds ({max_seconds} s); not uploaded"
    )]
    TooLong { seconds: u64, max_seconds: u64 },
    /// No complete answer within `timeout_seconds`.
    #[error("no answer within {seconds} s (timeout_seconds)")]
    Timeout { seconds: u64 },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the transcription server: {0}")]
    Transport(String),
    /// The server answered with an error, in its own words.
    #[error("HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    /// whisper.cpp could not decode the audio: without `--convert` it reads WAV only, and
    /// WhatsApp voice notes are Ogg/Opus.
    #[error(
        "whisper.cpp could not decode the {mime_type} audio (HTTP {status}: {message}); \
         start whisper-server with --convert (it needs ffmpeg) so it converts Ogg/Opus to WAV"
    )]
    Undecodable {
        status: u16,
        message: String,
        mime_type: String,
    },
    /// A success status whose body is not `{"text": ...}`.
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
}

impl TranscriptionError {
    /// The `outcome` label of `wagate_transcriptions_total`: `timeout`, `too_long` or `error`.
    pub fn outcome(&self) -> TranscriptionOutcome {
        match self {
            TranscriptionError::Timeout { .. } => TranscriptionOutcome::Timeout,
            TranscriptionError::TooLong { .. } => TranscriptionOutcome::TooLong,
            _ => TranscriptionOutcome::Error,
        }
    }

    /// Classifies a reqwest failure, dropping the URL and keeping the underlying cause.
    pub(super) fn from_reqwest(err: reqwest::Error, timeout_seconds: u64) -> Self {
        if err.is_timeout() {
            return TranscriptionError::Timeout {
                seconds: timeout_seconds,
            };
        }
        if err.is_decode() {
            return TranscriptionError::BadAnswer(error_chain(&err.without_url()));
        }
        TranscriptionError::Transport(error_chain(&err.without_url()))
    }
}

/// Provider messages are cut to this many characters so one error cannot flood a log line.
const MAX_MESSAGE_CHARS: usize = 300;

/// The message a server put in its error body: OpenAI writes `{"error": {"message"}}`,
/// whisper.cpp `{"error": "..."}`, other servers `{"message"}`, `{"detail"}` or plain text.
/// Falls back to the status reason. An echo of the API key is replaced by `[redacted]`.
pub(super) fn server_message(body: &str, status: u16, api_key: &str) -> String {
    let from_json = crate::text::json_error_message(body);
    let message = match from_json {
        Some(m) => m,
        None if !body.trim().is_empty() => body.trim().to_owned(),
        None => reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned(),
    };
    let message = if api_key.is_empty() {
        message
    } else {
        message.replace(api_key, "[redacted]")
    };
    cut_chars(&message, MAX_MESSAGE_CHARS)
}

use crate::metrics::TranscriptionOutcome;
use crate::text::{cut_chars, error_chain};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_and_whisper_cpp_error_bodies_both_give_their_message() {
        let openai =
            r#"{"error":{"message":"Invalid file format.","type":"invalid_request_error"}}"#;
        assert_eq!(server_message(openai, 400, ""), "Invalid file format.");
        let whisper = r#"{"error":"failed to read WAV file"}"#;
        assert_eq!(server_message(whisper, 200, ""), "failed to read WAV file");
        assert_eq!(server_message("", 503, ""), "Service Unavailable");
        assert_eq!(server_message("bad gateway\n", 502, ""), "bad gateway");
    }

    #[test]
    fn an_api_key_echoed_by_the_server_is_redacted() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-live-123."}}"#;
        let message = server_message(body, 401, "sk-live-123");
        assert_eq!(message, "Incorrect API key provided: [redacted].");
    }

    #[test]
    fn a_huge_error_body_is_cut() {
        let message = server_message(&"é".repeat(5000), 500, "");
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn the_undecodable_error_names_the_fix() {
        let err = TranscriptionError::Undecodable {
            status: 500,
            message: "failed to read audio data".into(),
            mime_type: "audio/ogg".into(),
        };
        let text = err.to_string();
        assert!(text.contains("--convert"), "{text}");
        assert!(text.contains("audio/ogg"), "{text}");
        assert_eq!(err.outcome().as_str(), "error");
    }
}
