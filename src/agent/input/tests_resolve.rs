//! Media descriptions, downloads and their failures, and how a turn's messages combine.

use super::*;
use crate::llm::{ImageData, Role};
use bytes::Bytes;

fn media(kind: MediaKind, mime_type: &str) -> MediaRequest {
    MediaRequest {
        media_id: "MEDIA_ID".into(),
        kind,
        mime_type: Some(mime_type.into()),
        caption: None,
        filename: None,
        file_size: None,
        voice: false,
    }
}

fn downloaded(bytes: &'static [u8]) -> MediaOutcome {
    MediaOutcome::Downloaded {
        data: Bytes::from_static(bytes),
        mime_type: None,
    }
}

fn jpeg(bytes: &'static [u8]) -> ImageData {
    ImageData {
        mime_type: "image/jpeg".into(),
        data: Bytes::from_static(bytes),
    }
}

#[test]
fn an_audio_attachment_is_described_with_type_and_downloaded_size() {
    let audio = media(MediaKind::Audio, "audio/ogg");

    assert_eq!(
        media_description(&audio, Some(15_234), None),
        "[Attached audio: audio/ogg, 15234 bytes]"
    );
}

#[test]
fn a_voice_note_says_so_and_drops_codec_parameters() {
    let voice = MediaRequest {
        voice: true,
        ..media(MediaKind::Audio, "audio/ogg; codecs=opus")
    };

    assert_eq!(
        media_description(&voice, Some(4_096), None),
        "[Attached audio: audio/ogg, 4096 bytes, voice note]"
    );
}

#[test]
fn without_a_download_the_declared_size_is_used_or_left_out() {
    let declared = MediaRequest {
        file_size: Some(999),
        ..media(MediaKind::Video, "video/mp4")
    };
    let unknown = media(MediaKind::Video, "video/mp4");

    assert_eq!(
        media_description(&declared, None, None),
        "[Attached video: video/mp4, 999 bytes]"
    );
    assert_eq!(
        media_description(&unknown, None, None),
        "[Attached video: video/mp4]"
    );
}

#[test]
fn a_document_adds_its_filename_and_the_caption_follows_on_the_next_line() {
    let document = MediaRequest {
        filename: Some("Q3 report.pdf".into()),
        caption: Some("can you summarise this?".into()),
        ..media(MediaKind::Document, "application/pdf")
    };

    assert_eq!(
        media_description(&document, Some(52_011), None),
        "[Attached document: application/pdf, 52011 bytes, filename=Q3 report.pdf]\n\
         can you summarise this?"
    );
}

#[test]
fn a_failed_download_is_described_with_the_reason_and_the_caption() {
    let image = MediaRequest {
        caption: Some("is this mould?".into()),
        ..media(MediaKind::Image, "image/jpeg")
    };

    let part = resolve_media(&image, MediaOutcome::Failed("download failed".into()));

    assert_eq!(
        part,
        ResolvedPart::Text("[Attached image: image/jpeg, download failed]\nis this mould?".into())
    );
}

#[test]
fn a_downloaded_image_goes_to_the_model_as_itself() {
    let image = MediaRequest {
        caption: Some("what plant is this?".into()),
        ..media(MediaKind::Image, "image/jpeg")
    };

    let part = resolve_media(&image, downloaded(b"\xff\xd8\xff jpeg bytes"));

    assert_eq!(
        part,
        ResolvedPart::Image {
            image: jpeg(b"\xff\xd8\xff jpeg bytes"),
            caption: Some("what plant is this?".into()),
            media_id: Some(image.media_id.clone()),
        }
    );
}

#[test]
fn the_graph_apis_mime_type_wins_over_the_webhooks() {
    let image = media(MediaKind::Image, "image/jpeg");
    let outcome = MediaOutcome::Downloaded {
        data: Bytes::from_static(b"png"),
        mime_type: Some("image/png".into()),
    };

    let ResolvedPart::Image { image, .. } = resolve_media(&image, outcome) else {
        panic!("a downloaded image stays an image");
    };

    assert_eq!(image.mime_type, "image/png");
}

#[test]
fn a_downloaded_sticker_or_document_is_described_with_its_real_size() {
    let sticker = media(MediaKind::Sticker, "image/webp");

    let part = resolve_media(&sticker, downloaded(b"RIFF1234WEBP"));

    assert_eq!(
        part,
        ResolvedPart::Text("[Attached sticker: image/webp, 12 bytes]".into())
    );
}

#[test]
fn a_transcribed_voice_note_reads_as_a_voice_message() {
    let voice = MediaRequest {
        voice: true,
        ..media(MediaKind::Audio, "audio/ogg; codecs=opus")
    };

    let heard = resolve_media(&voice, MediaOutcome::Transcribed(" call me at six ".into()));
    let silent = resolve_media(&voice, MediaOutcome::Transcribed("  ".into()));

    assert_eq!(
        heard,
        ResolvedPart::Text("[Voice message] call me at six".into())
    );
    assert_eq!(
        silent,
        ResolvedPart::Text("[Attached audio: audio/ogg, voice note]".into())
    );
}

#[test]
fn memory_keeps_a_placeholder_for_images_never_their_bytes() {
    let with_caption = ResolvedPart::Image {
        image: jpeg(b"secret pixels"),
        caption: Some("my rash".into()),
        media_id: None,
    };
    let without = ResolvedPart::Image {
        image: jpeg(b"secret pixels"),
        caption: None,
        media_id: None,
    };

    assert_eq!(memory_text(&with_caption), "[Image] my rash");
    assert_eq!(memory_text(&without), "[Image]");
}

#[test]
fn several_messages_of_a_turn_become_one_user_message_in_arrival_order() {
    let parts = vec![
        ResolvedPart::Text("hi".into()),
        ResolvedPart::Image {
            image: jpeg(b"first"),
            caption: Some("this one".into()),
            media_id: None,
        },
        ResolvedPart::Text("[Location: (1, 2)]".into()),
        ResolvedPart::Image {
            image: jpeg(b"second"),
            caption: None,
            media_id: None,
        },
        ResolvedPart::Text("which is cheaper?".into()),
    ];

    let input = combine(parts);

    assert_eq!(input.message.role, Role::User);
    assert_eq!(
        input.message.content,
        "hi\nthis one\n[Location: (1, 2)]\n[Image]\nwhich is cheaper?"
    );
    assert_eq!(input.message.images, vec![jpeg(b"first"), jpeg(b"second")]);
    assert_eq!(
        input.memory_text,
        "hi\n[Image] this one\n[Location: (1, 2)]\n[Image]\nwhich is cheaper?"
    );
}

#[test]
fn memory_text_of_a_combined_turn_never_contains_image_bytes() {
    let input = combine(vec![ResolvedPart::Image {
        image: jpeg(b"PIXELDATA"),
        caption: Some("look".into()),
        media_id: None,
    }]);

    assert_eq!(input.message.images.len(), 1);
    assert!(!input.memory_text.contains("PIXELDATA"));
    assert_eq!(input.memory_text, "[Image] look");
}

#[test]
fn a_single_text_message_is_passed_through_unchanged() {
    let input = combine(vec![ResolvedPart::Text("just this".into())]);

    assert_eq!(input.message.content, "just this");
    assert!(input.message.images.is_empty());
    assert_eq!(input.memory_text, "just this");
}
