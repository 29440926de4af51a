//! Voice notes: transcribed through a fake OpenAI-compatible server or a fake whisper.cpp
//! server (real HTTP, multipart parsed), so the agent answers what the customer said; and when
//! transcription fails, times out or the audio is too long, the message is still answered.
//!
//! Here end to end: webhook in, the fake Graph serving the audio, a fake model, a fake
//! transcription server; `transcriber.rs` tests the transcriber on its own.

mod fake_stt;
mod transcriber;

use crate::support::fake_graph::FakeMedia;
use crate::support::fake_llm::{self, Reply};
use crate::support::*;
use fake_stt::{says, FakeStt};
use serde_json::{json, Value};
use std::time::Duration;

/// An Ogg stream of `len` bytes without an `OpusHead`, so its duration is estimated from the
/// size: about `len / 2000` seconds.
pub fn voice_note(len: usize) -> Vec<u8> {
    let mut bytes = b"OggS".to_vec();
    bytes.resize(len, 0x5a);
    bytes
}

/// A live app whose agent (answering "Sure, noted.") is edited by `agent`.
async fn world(agent: impl FnOnce(Agent) -> Agent + 'static) -> TestApp {
    TestApp::builder()
        .llm(|_, _| fake_llm::ollama_says("Sure, noted."))
        .agent(agent)
        .start()
        .await
}

/// The agent edit that sets `spec.transcription` for `provider` at `endpoint` (with the
/// `whisper-1` model for OpenAI), `extra` keys merged in.
fn transcription(provider: &str, endpoint: &str, extra: Value) -> impl FnOnce(Agent) -> Agent {
    let mut transcription = json!({"provider": provider, "endpoint": endpoint});
    if provider == "openai" {
        transcription["model"] = json!("whisper-1");
    }
    move |agent| {
        agent
            .set("transcription", transcription)
            .set("transcription", extra)
    }
}

/// Posts one voice note (served by the fake Graph as `audio/ogg`) and waits for the reply;
/// returns the user message the model saw.
async fn send_voice_note(w: &TestApp, from: &str, audio: Vec<u8>, caption: Option<&str>) -> String {
    w.graph
        .add_media("AUDIO1", FakeMedia::honest("audio/ogg", audio));
    let mut media = json!({"id": "AUDIO1", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": true});
    if let Some(caption) = caption {
        media["caption"] = json!(caption);
    }
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.voice.{from}"), "timestamp": "1700000000",
                      "type": "audio", "audio": media}]
    }}]}]});
    let status = w
        .server
        .post_signed(&serde_json::to_vec(&body).unwrap())
        .await
        .status();
    assert_eq!(status, 200);
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(sends.len(), 1, "the voice note is answered");
    assert_eq!(sends[0].body["text"]["body"], "Sure, noted.");
    let requests = w.llm.requests();
    let user = fake_llm::messages_of(&requests[0]).last().cloned().unwrap();
    user["content"].as_str().unwrap_or_default().to_owned()
}

/// What memory keeps of the customer's side of the conversation with `phone`.
async fn remembered(w: &TestApp, phone: &str) -> Vec<String> {
    let db = w.server.data.join("wagate.db");
    let key = format!("wa_{phone}");
    for _ in 0..100 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let rows: Vec<String> = conn
            .prepare("SELECT content FROM memory WHERE key = ?1 AND role = 'user' ORDER BY id")
            .and_then(|mut s| {
                s.query_map([&key], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .unwrap_or_default();
        if !rows.is_empty() {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn a_voice_note_reaches_the_model_as_its_transcript_and_memory_keeps_the_text() {
    let stt = FakeStt::saying("I would like to book a table for two at eight.").await;
    let w = world(transcription(
        "openai",
        &format!("{}/v1", stt.url),
        json!({}),
    ))
    .await;

    let seen = send_voice_note(&w, "15551240001", voice_note(6_000), None).await;

    assert_eq!(
        seen,
        "[Voice message] I would like to book a table for two at eight."
    );
    let upload = &stt.uploads()[0];
    let file = upload.file.as_ref().expect("the audio was uploaded");
    assert_eq!(file.bytes, voice_note(6_000), "the downloaded bytes, as is");
    assert_eq!(file.file_name.as_deref(), Some("voice.ogg"));
    assert_eq!(
        remembered(&w, "15551240001").await,
        vec![seen.clone()],
        "memory stores the transcript, never audio"
    );
    let ok = "wagate_transcriptions_total{provider=\"openai\",outcome=\"ok\"} 1";
    assert!(w.server.wait_for_metric(ok, 5).await);
    let bytes = "wagate_transcription_audio_bytes_total{provider=\"openai\"} 6000";
    assert!(w.server.wait_for_metric(bytes, 5).await);
}

#[tokio::test]
async fn a_whisper_cpp_agent_answers_a_voice_note_with_its_caption() {
    let stt = FakeStt::saying(" Where is my order?\n").await;
    let w = world(transcription("whisper_cpp", &stt.url, json!({}))).await;

    let seen = send_voice_note(&w, "15551240002", voice_note(3_000), Some("order 4411")).await;

    assert_eq!(seen, "[Voice message] Where is my order?\norder 4411");
    let fields = &stt.uploads()[0].fields;
    assert!(!fields.contains_key("model"));
    assert_eq!(
        fields.get("language").map(String::as_str),
        Some("auto"),
        "whisper-server would assume English without it"
    );
}

#[tokio::test]
async fn pii_in_a_transcript_is_redacted_before_the_model_and_before_memory() {
    let stt = FakeStt::saying("Write to ana.perez@example.com about my booking.").await;
    let guard = json!({"input": [{"type": "pii_detection", "action": "redact"}]});
    let openai = transcription("openai", &stt.url, json!({}));
    let w = world(move |a| openai(a).set("guardrails", guard)).await;

    let seen = send_voice_note(&w, "15551240003", voice_note(4_000), None).await;

    assert_eq!(
        seen,
        "[Voice message] Write to [REDACTED_EMAIL] about my booking."
    );
    let memory = remembered(&w, "15551240003").await;
    assert_eq!(memory, vec![seen]);
    assert!(!memory[0].contains("example.com"));
}

#[tokio::test]
async fn when_transcription_fails_the_model_gets_the_attachment_with_a_note() {
    let stt = FakeStt::start(|_| {
        Reply::status(500, json!({"error": {"message": "the GPU caught fire"}}))
    })
    .await;
    let w = world(transcription("openai", &stt.url, json!({}))).await;

    let seen = send_voice_note(&w, "15551240004", voice_note(5_000), None).await;

    assert_eq!(
        seen,
        "[Attached audio: audio/ogg, 5000 bytes, voice note, transcription failed]"
    );
    let error = "wagate_transcriptions_total{provider=\"openai\",outcome=\"error\"} 1";
    assert!(w.server.wait_for_metric(error, 5).await);
}

#[tokio::test]
async fn when_transcription_times_out_the_message_is_still_answered() {
    let stt = FakeStt::start(|_| says("late").after(Duration::from_secs(5))).await;
    let w = world(transcription(
        "openai",
        &stt.url,
        json!({"timeout_seconds": 1}),
    ))
    .await;

    let seen = send_voice_note(&w, "15551240005", voice_note(5_000), None).await;

    assert_eq!(
        seen,
        "[Attached audio: audio/ogg, 5000 bytes, voice note, transcription failed: timed out]"
    );
    let timeout = "wagate_transcriptions_total{provider=\"openai\",outcome=\"timeout\"} 1";
    assert!(w.server.wait_for_metric(timeout, 5).await);
}

#[tokio::test]
async fn too_long_audio_is_refused_without_calling_the_transcription_server() {
    let stt = FakeStt::saying("never").await;
    let w = world(transcription(
        "openai",
        &stt.url,
        json!({"max_seconds": 10}),
    ))
    .await;

    // About 30 seconds of Opus at WhatsApp's bitrate.
    let seen = send_voice_note(&w, "15551240006", voice_note(60_000), None).await;

    assert_eq!(
        seen,
        "[Attached audio: audio/ogg, 60000 bytes, voice note, transcription failed: longer than 10 seconds]"
    );
    assert!(stt.uploads().is_empty());
    let too_long = "wagate_transcriptions_total{provider=\"openai\",outcome=\"too_long\"} 1";
    assert!(w.server.wait_for_metric(too_long, 5).await);
}

#[tokio::test]
async fn an_agent_without_transcription_describes_audio_and_uploads_nothing() {
    let stt = FakeStt::saying("never").await;
    let w = world(|a| a).await;

    let seen = send_voice_note(&w, "15551240007", voice_note(4_096), None).await;

    assert_eq!(seen, "[Attached audio: audio/ogg, 4096 bytes, voice note]");
    assert!(stt.uploads().is_empty());
}
