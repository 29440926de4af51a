//! Media in memory: a customer's image is remembered as its media id (never its bytes) and
//! downloaded again for a later turn, so the model still sees it two messages on.

use super::{body_of, world};
use crate::support::fake_graph::FakeMedia;
use crate::support::fake_llm;
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Bytes no file of the data directory may contain.
const PIXELS: &[u8] = b"\xff\xd8\xff\xe0PIXELS-THAT-NEVER-TOUCH-THE-DISK-0123456789";

fn image(id: &str, from: &str, media_id: &str, caption: &str) -> Vec<u8> {
    body_of(
        from,
        json!({"from": from, "id": id, "timestamp": chrono::Utc::now().timestamp().to_string(),
               "type": "image",
               "image": {"id": media_id, "mime_type": "image/jpeg", "sha256": "x", "caption": caption}}),
    )
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_image_is_still_seen_two_messages_later_downloaded_again_and_never_stored() {
    let w = world("llava:7b", |a| a, |_, _| fake_llm::ollama_says("Noted.")).await;
    w.graph.add_media(
        "MEDIA-SOFA",
        FakeMedia::honest("image/jpeg", PIXELS.to_vec()),
    );
    let user = "15550006001";
    w.post(&image("wamid.mm.1", user, "MEDIA-SOFA", "my new sofa"))
        .await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    w.customer_says("wamid.mm.2", user, "nice, right?").await;
    w.graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    w.customer_says("wamid.mm.3", user, "what colour is it?")
        .await;
    w.graph
        .wait_for_text_sends(3, Duration::from_secs(10))
        .await;

    let chats = w.chats();
    assert_eq!(chats.len(), 3);
    let encoded = base64::engine::general_purpose::STANDARD.encode(PIXELS);
    let third = fake_llm::messages_of(&chats[2]);
    let with_image: Vec<&Value> = third
        .iter()
        .filter(|m| m["images"].as_array().is_some_and(|i| !i.is_empty()))
        .collect();
    assert_eq!(with_image.len(), 1, "one remembered image: {third:?}");
    assert_eq!(with_image[0]["role"], "user");
    assert!(with_image[0]["content"]
        .as_str()
        .unwrap()
        .contains("my new sofa"));
    assert_eq!(with_image[0]["images"][0], encoded.as_str());
    let last = third.last().unwrap();
    assert_eq!(last["content"], "what colour is it?");
    assert!(last["images"].as_array().is_none_or(|i| i.is_empty()));

    // Downloaded once per turn (the URL Meta gives lives minutes), never kept.
    assert_eq!(w.graph.requests_under("/media-download/").len(), 3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for file in files(w.data.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !contains(&bytes, &PIXELS[4..]) && !contains(&bytes, encoded.as_bytes()),
            "image bytes found in {}",
            file.display()
        );
    }
}

#[tokio::test]
async fn a_model_without_vision_is_not_sent_remembered_images_and_nothing_is_downloaded_again() {
    let w = world("llama3.1:8b", |a| a, |_, _| fake_llm::ollama_says("Noted.")).await;
    w.graph.add_media(
        "MEDIA-TEXT",
        FakeMedia::honest("image/jpeg", PIXELS.to_vec()),
    );
    let user = "15550006002";
    w.post(&image("wamid.mt.1", user, "MEDIA-TEXT", "a photo"))
        .await;
    // No model can see it: the customer gets error_reply, the image stays in memory as text.
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    w.customer_says("wamid.mt.2", user, "did you see it?").await;
    w.graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(w.graph.requests_under("/media-download/").len(), 1);
    let chats = w.chats();
    let last = chats.last().expect("the text turn reached the model");
    for m in fake_llm::messages_of(last) {
        assert!(m["images"].as_array().is_none_or(|i| i.is_empty()), "{m}");
    }
}
