//! The transcriber on its own, against the fake servers: the multipart shape each provider
//! gets, the answers it understands, and the three ways it fails (error, timeout, too long).

use super::fake_stt::{says, FakeStt};
use super::voice_note;
use crate::support::fake_llm::Reply;
use crate::support::{Agent, Channel, ConfigDir};
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wagate::config::{Config, ConfigError, TranscriptionProvider, TranscriptionSpec};
use wagate::metrics::{Metrics, ProviderLabels, TranscriptionLabels, TranscriptionOutcome};
use wagate::secret::Secret;
use wagate::transcription::{Transcriber, TranscriptionError};

const API_KEY: &str = "sk-test-transcription-key";

fn spec(provider: TranscriptionProvider, endpoint: &str) -> TranscriptionSpec {
    TranscriptionSpec {
        provider,
        endpoint: endpoint.to_owned(),
        model: (provider == TranscriptionProvider::Openai).then(|| "whisper-1".to_owned()),
        api_key: Secret::default(),
        language: None,
        prompt: None,
        max_seconds: 300,
        timeout_seconds: 5,
    }
}

/// `wagate_transcriptions_total{provider, outcome}`.
fn transcriptions(metrics: &Metrics, provider: &str, outcome: TranscriptionOutcome) -> u64 {
    metrics
        .transcriptions
        .get_or_create(&TranscriptionLabels {
            provider: provider.into(),
            outcome,
        })
        .get()
}

fn transcriber() -> (Transcriber, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (
        Transcriber::new(reqwest::Client::new(), Arc::clone(&metrics)),
        metrics,
    )
}

#[tokio::test]
async fn an_openai_upload_carries_the_file_as_voice_ogg_with_model_language_and_key() {
    let stt = FakeStt::saying("  I would like a table for two.\n").await;
    let mut spec = spec(TranscriptionProvider::Openai, &format!("{}/v1", stt.url));
    spec.api_key = Secret::new(API_KEY);
    spec.language = Some("en".into());
    spec.prompt = Some("Restaurant bookings.".into());
    let (transcriber, metrics) = transcriber();
    let audio = voice_note(4_000);

    let text = transcriber
        .transcribe(&spec, Bytes::from(audio.clone()), "audio/ogg; codecs=opus")
        .await
        .expect("transcribed");

    assert_eq!(text, "I would like a table for two.");
    let uploads = stt.uploads();
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert_eq!(upload.path, "/v1/audio/transcriptions");
    assert_eq!(
        upload.authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let file = upload.file.as_ref().expect("a file part");
    assert_eq!(file.file_name.as_deref(), Some("voice.ogg"));
    assert_eq!(file.content_type.as_deref(), Some("audio/ogg"));
    assert_eq!(file.bytes, audio);
    let field = |name: &str| upload.fields.get(name).map(String::as_str);
    assert_eq!(field("model"), Some("whisper-1"));
    assert_eq!(field("language"), Some("en"));
    assert_eq!(field("prompt"), Some("Restaurant bookings."));
    assert_eq!(field("response_format"), Some("json"));
    assert_eq!(
        transcriptions(&metrics, "openai", TranscriptionOutcome::Ok),
        1
    );
    let bytes = metrics
        .transcription_audio_bytes
        .get_or_create(&ProviderLabels {
            provider: "openai".into(),
        })
        .get();
    assert_eq!(bytes, 4_000);
    assert!(metrics
        .render()
        .contains("wagate_transcription_duration_seconds_count{provider=\"openai\"} 1"));
}

#[tokio::test]
async fn a_whisper_cpp_upload_goes_to_inference_without_a_model_field() {
    let stt = FakeStt::saying(" Hola, quiero reservar.").await;
    let mut spec = spec(TranscriptionProvider::WhisperCpp, &stt.url);
    spec.language = Some("es".into());
    let (transcriber, _) = transcriber();
    let mp3 = vec![0xffu8; 3_000];

    let text = transcriber
        .transcribe(&spec, Bytes::from(mp3), "audio/mpeg")
        .await
        .expect("transcribed");

    assert_eq!(text, "Hola, quiero reservar.");
    let upload = &stt.uploads()[0];
    assert_eq!(upload.path, "/inference");
    assert_eq!(upload.authorization, None, "no api_key, no header");
    let file = upload.file.as_ref().expect("a file part");
    assert_eq!(file.file_name.as_deref(), Some("voice.mp3"));
    assert_eq!(file.content_type.as_deref(), Some("audio/mpeg"));
    assert!(!upload.fields.contains_key("model"));
    assert_eq!(
        upload.fields.get("language").map(String::as_str),
        Some("es")
    );
    assert_eq!(
        upload.fields.get("response_format").map(String::as_str),
        Some("json")
    );
}

#[tokio::test]
async fn whisper_cpp_without_convert_fails_with_an_error_that_names_the_fix() {
    // Older whisper-server answers 200 with an error body; newer ones a 4xx/5xx.
    for status in [200, 500] {
        let stt = FakeStt::start(move |_| {
            Reply::status(status, json!({"error": "failed to read WAV file"}))
        })
        .await;
        let (transcriber, metrics) = transcriber();
        let spec = spec(TranscriptionProvider::WhisperCpp, &stt.url);

        let err = transcriber
            .transcribe(&spec, Bytes::from(voice_note(2_000)), "audio/ogg")
            .await
            .expect_err("undecodable");

        assert!(
            matches!(err, TranscriptionError::Undecodable { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("start whisper-server with --convert"),
            "{text}"
        );
        assert!(text.contains("failed to read WAV file"), "{text}");
        assert_eq!(
            transcriptions(&metrics, "whisper_cpp", TranscriptionOutcome::Error),
            1
        );
    }
}

#[tokio::test]
async fn an_openai_error_keeps_its_status_and_message_but_never_the_key() {
    let stt = FakeStt::start(|_| {
        Reply::status(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {API_KEY}."), "type": "invalid_request_error"}}),
        )
    })
    .await;
    let mut spec = spec(TranscriptionProvider::Openai, &stt.url);
    spec.api_key = Secret::new(API_KEY);
    let (transcriber, _) = transcriber();

    let err = transcriber
        .transcribe(&spec, Bytes::from(voice_note(2_000)), "audio/ogg")
        .await
        .expect_err("rejected");

    let text = err.to_string();
    assert!(
        matches!(err, TranscriptionError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(text.contains("Incorrect API key provided"), "{text}");
    assert!(!text.contains(API_KEY), "{text}");
    assert!(!format!("{err:?}").contains(API_KEY));
}

#[tokio::test]
async fn a_slow_transcription_server_times_out_after_timeout_seconds() {
    let stt = FakeStt::start(|_| says("too late").after(Duration::from_secs(4))).await;
    let mut spec = spec(TranscriptionProvider::Openai, &stt.url);
    spec.timeout_seconds = 1;
    let (transcriber, metrics) = transcriber();
    let started = Instant::now();

    let err = transcriber
        .transcribe(&spec, Bytes::from(voice_note(2_000)), "audio/ogg")
        .await
        .expect_err("timed out");

    assert!(
        matches!(err, TranscriptionError::Timeout { seconds: 1 }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(3_000));
    assert_eq!(
        transcriptions(&metrics, "openai", TranscriptionOutcome::Timeout),
        1
    );
}

#[tokio::test]
async fn audio_estimated_longer_than_max_seconds_is_refused_without_uploading() {
    let stt = FakeStt::saying("never").await;
    let mut spec = spec(TranscriptionProvider::Openai, &stt.url);
    spec.max_seconds = 60;
    let (transcriber, metrics) = transcriber();

    // About 90 seconds of WhatsApp Opus (2 KB/s).
    let err = transcriber
        .transcribe(&spec, Bytes::from(voice_note(180_000)), "audio/ogg")
        .await
        .expect_err("too long");

    assert!(
        matches!(
            err,
            TranscriptionError::TooLong {
                seconds: 90,
                max_seconds: 60
            }
        ),
        "{err:?}"
    );
    assert!(stt.uploads().is_empty(), "nothing was uploaded");
    assert_eq!(
        transcriptions(&metrics, "openai", TranscriptionOutcome::TooLong),
        1
    );
}

#[test]
fn an_openai_transcription_without_a_model_is_a_config_error() {
    let agent = Agent::assistant("http://127.0.0.1:9").set(
        "transcription",
        json!({"provider": "openai", "endpoint": "https://api.openai.com/v1"}),
    );
    let config = ConfigDir::write(&Channel::dry_run(), &[agent]);

    let problems = match Config::load(config.path()) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].field.as_deref(),
        Some("spec.transcription.model")
    );
    assert!(
        problems[0]
            .message
            .contains("required for provider `openai`"),
        "{}",
        problems[0]
    );
}
