//! Each inbound message type, as Meta sends it, and what the model is told.

use super::*;
use serde_json::{json, Value as Json};

/// A recorded message whose kind is Meta's `type` (empty when the sender left it out).
fn record(raw: Json) -> InboundRecord {
    InboundRecord {
        seq: 1,
        message_id: "wamid.ID".into(),
        phone_number_id: "123".into(),
        display_phone_number: "15550001111".into(),
        user: "5511999999999".into(),
        contact_name: Some("Ana".into()),
        kind: raw
            .get("type")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .into(),
        timestamp: 1_700_000_000,
        raw,
    }
}

fn text_of(raw: Json) -> String {
    match describe(&record(raw)) {
        InputPart::Text(text) => text,
        other => panic!("expected text, got {other:?}"),
    }
}

fn media_of(raw: Json) -> MediaRequest {
    match describe(&record(raw)) {
        InputPart::Media(request) => request,
        other => panic!("expected media, got {other:?}"),
    }
}

#[test]
fn a_text_message_is_its_body() {
    let raw = json!({"from": "5511999999999", "id": "wamid.1", "timestamp": "1697043223",
        "type": "text", "text": {"body": "Olá, tudo bem?"}});

    assert_eq!(text_of(raw), "Olá, tudo bem?");
}

#[test]
fn a_button_or_list_reply_is_the_title_the_user_tapped() {
    let button = json!({"type": "interactive", "interactive": {"type": "button_reply",
        "button_reply": {"id": "callback_data", "title": "Yes, book it"}}});
    let list = json!({"type": "interactive", "interactive": {"type": "list_reply",
        "list_reply": {"id": "row_2", "title": "Tuesday", "description": "10:00 to 12:00"}}});

    assert_eq!(text_of(button), "Yes, book it");
    assert_eq!(text_of(list), "Tuesday");
}

#[test]
fn a_template_quick_reply_is_the_text_of_the_button() {
    let raw = json!({"context": {"from": "15550001111", "id": "wamid.x"}, "type": "button",
        "button": {"payload": "No-Button-Payload", "text": "No"}});

    assert_eq!(text_of(raw), "No");
}

#[test]
fn a_flow_reply_shows_the_answers_without_the_flow_token() {
    let raw = json!({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent",
        "response_json": "{\"flow_token\":\"AQAAA.\",\"delivery_rating\":\"4\",\"comment_text\":\"Fast\"}"}}});

    assert_eq!(
        text_of(raw),
        "[Form response: comment_text=Fast, delivery_rating=4]"
    );
}

#[test]
fn a_flow_reply_without_readable_answers_falls_back_to_its_body() {
    let raw = json!({"type": "interactive", "interactive": {"type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "not json"}}});

    assert_eq!(text_of(raw), "[Form response: Sent]");
}

#[test]
fn a_chosen_location_shows_name_address_coordinates_and_link() {
    let raw = json!({"type": "location", "location": {"latitude": 37.4611978,
        "longitude": -122.2164385, "name": "Facebook HQ",
        "address": "1 Hacker Way, Menlo Park, CA 94025",
        "url": "https://maps.google.com/?cid=2000000000000000000"}});

    assert_eq!(
        text_of(raw),
        "[Location: Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (37.4611978, -122.2164385) \
         https://maps.google.com/?cid=2000000000000000000]"
    );
}

#[test]
fn a_current_location_is_just_its_coordinates() {
    let raw = json!({"type": "location",
        "location": {"latitude": 12.25089, "longitude": 43.90539}});

    assert_eq!(text_of(raw), "[Location: (12.25089, 43.90539)]");
}

#[test]
fn a_location_without_a_type_field_is_still_understood() {
    let raw = json!({"from": "PHONE_NUMBER", "id": "wamid.ID", "timestamp": 1238838484,
        "location": {"latitude": -23.5, "longitude": -46.6, "name": "Paulista"}});

    assert_eq!(text_of(raw), "[Location: Paulista (-23.5, -46.6)]");
}

#[test]
fn shared_contacts_are_one_line_each_with_name_phones_and_emails() {
    let raw = json!({"type": "contacts", "contacts": [
        {"name": {"first_name": "Chandler", "last_name": "Bing", "formatted_name": "Chandler Bing"},
         "phones": [{"phone": "+1 555-555-5555", "wa_id": "15555555555", "type": "CELL"}],
         "emails": [{"email": "chandler@example.com", "type": "WORK"}]},
        {"name": {"first_name": "Monica"}, "phones": [{"wa_id": "16666666666"}]}
    ]});

    assert_eq!(
        text_of(raw),
        "[Shared contact: Chandler Bing, +1 555-555-5555, chandler@example.com]\n\
         [Shared contact: Monica, 16666666666]"
    );
}

#[test]
fn an_order_lists_items_prices_and_the_note() {
    let raw = json!({"type": "order", "order": {"catalog_id": "354160437058781",
        "text": "no onions please", "product_items": [
            {"product_retailer_id": "HAMBURGER", "quantity": 2, "item_price": 10, "currency": "USD"},
            {"product_retailer_id": "SODA", "quantity": "1", "item_price": "2.5", "currency": "USD"}]}});

    assert_eq!(
        text_of(raw),
        "[Order: 2 × HAMBURGER at 10.00 USD, 1 × SODA at 2.5 USD; note: no onions please]"
    );
}

#[test]
fn an_order_with_an_empty_note_has_no_note() {
    let raw = json!({"type": "order", "order": {"text": "", "product_items": [
        {"product_retailer_id": "SODA", "quantity": 3, "item_price": 1.5, "currency": "ILS"}]}});

    assert_eq!(text_of(raw), "[Order: 3 × SODA at 1.50 ILS]");
}

#[test]
fn unsupported_and_unknown_messages_say_so() {
    let unsupported = json!({"type": "unsupported", "unsupported": {"type": "poll"},
        "errors": [{"code": 131051, "title": "Message type unknown"}]});
    let unknown = json!({"type": "unknown",
        "errors": [{"code": 131051, "title": "Unsupported message type"}]});

    assert_eq!(text_of(unsupported), "[Unsupported message]");
    assert_eq!(text_of(unknown), "[Unsupported message]");
}

#[test]
fn a_reaction_gets_no_reply() {
    let reaction = json!({"type": "reaction",
        "reaction": {"message_id": "wamid.yzxyzx=", "emoji": "😮"}});
    let removed = json!({"type": "reaction", "reaction": {"message_id": "wamid.yzxyzx="}});

    assert_eq!(describe(&record(reaction)), InputPart::Skip);
    assert_eq!(describe(&record(removed)), InputPart::Skip);
}

#[test]
fn a_reaction_told_to_the_agent_quotes_its_message_on_one_short_line() {
    let reaction = json!({"type": "reaction",
        "reaction": {"message_id": "wamid.out", "emoji": " 👎 "}});
    let removed = json!({"type": "reaction", "reaction": {"message_id": "wamid.out", "emoji": ""}});
    assert_eq!(reaction_of(&record(reaction)), Some(("wamid.out", "👎")));
    assert_eq!(reaction_of(&record(removed)), None);

    assert_eq!(
        reaction_text("👍", "Our price:\n\n10 EUR."),
        "[Reaction 👍 to your message: \"Our price: 10 EUR.\"]"
    );
    let long = reaction_text("❤️", &"é".repeat(300));
    assert!(long.ends_with("…\"]"), "{long}");
    assert_eq!(long.matches('é').count(), 200);
}

#[test]
fn a_deleted_message_or_an_unknown_type_gets_no_reply() {
    let revoke = json!({"type": "revoke", "revoke": {"original_message_id": "wamid.ORIG"}});
    let novel = json!({"type": "hologram", "hologram": {"id": "1"}});
    let call_permission = json!({"type": "interactive", "interactive": {
        "type": "call_permission_reply",
        "call_permission_reply": {"response": "accept", "response_source": "user_action"}}});

    assert_eq!(describe(&record(revoke)), InputPart::Skip);
    assert_eq!(describe(&record(novel)), InputPart::Skip);
    assert_eq!(describe(&record(call_permission)), InputPart::Skip);
}

#[test]
fn a_system_message_is_a_notice() {
    let raw = json!({"type": "system", "system": {"body": "User A changed from 1 to 2",
        "wa_id": "2", "type": "user_changed_number"}});

    assert_eq!(text_of(raw), "[System notice: User A changed from 1 to 2]");
}

#[test]
fn an_edited_message_is_marked_as_an_edit() {
    let raw = json!({"type": "edit", "edit": {"original_message_id": "wamid.ORIG",
        "message": {"type": "text", "text": {"body": "meet at 6, not 5"}}}});

    assert_eq!(text_of(raw), "[Edited message] meet at 6, not 5");
}

#[test]
fn an_interactive_message_without_its_reply_is_unsupported() {
    let raw = json!({"type": "interactive", "context": {"from": "1", "id": "wamid.x"}});

    assert_eq!(text_of(raw), "[Unsupported message]");
}

#[test]
fn an_image_asks_for_its_download_with_caption_and_type() {
    let raw = json!({"type": "image", "image": {"caption": "What plant is this?",
        "mime_type": "image/jpeg", "sha256": "IMAGE_HASH", "id": "IMAGE_ID"}});

    let request = media_of(raw);

    assert_eq!(request.media_id, "IMAGE_ID");
    assert_eq!(request.kind, MediaKind::Image);
    assert_eq!(request.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(request.caption.as_deref(), Some("What plant is this?"));
}

#[test]
fn a_voice_note_is_audio_marked_as_voice() {
    let raw = json!({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus",
        "sha256": "m04p=", "id": "1234567890987654321", "voice": true}});

    let request = media_of(raw);

    assert_eq!(request.kind, MediaKind::Audio);
    assert!(request.voice);
}

#[test]
fn a_document_keeps_its_filename_and_declared_size() {
    let raw = json!({"type": "document", "document": {"caption": "caption",
        "filename": "report.pdf", "mime_type": "application/pdf", "id": "DOC_ID",
        "file_size": "52011"}});

    let request = media_of(raw);

    assert_eq!(request.kind, MediaKind::Document);
    assert_eq!(request.filename.as_deref(), Some("report.pdf"));
    assert_eq!(request.file_size, Some(52_011));
}

#[test]
fn video_and_stickers_are_media_too() {
    let video = json!({"type": "video", "video": {"mime_type": "video/mp4", "id": "765756756"}});
    let sticker = json!({"type": "sticker", "sticker": {"mime_type": "image/webp",
        "id": "STICKER_ID", "animated": true}});

    assert_eq!(media_of(video).kind, MediaKind::Video);
    assert_eq!(media_of(sticker).kind, MediaKind::Sticker);
}

#[test]
fn media_without_an_id_is_described_as_unavailable() {
    let raw = json!({"type": "image", "image": {"caption": "look", "mime_type": "image/png"}});

    assert_eq!(
        text_of(raw),
        "[Attached image: image/png, unavailable]\nlook"
    );
}

#[test]
fn a_welcome_request_without_a_type_field_is_still_a_welcome() {
    // The payload's reader infers the type from the key, as for any other type.
    let raw = json!({"from": "5511999999999", "id": "wamid.W", "request_welcome": {}});

    assert_eq!(text_of(raw), "[The user opened the chat]");
}

#[test]
fn an_edit_without_its_new_content_gets_no_reply() {
    let raw = json!({"type": "edit", "edit": {"original_message_id": "wamid.ORIG"}});

    assert_eq!(describe(&record(raw)), InputPart::Skip);
}
