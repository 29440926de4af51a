//! Each message type is read into its variant, whatever the sender's number types.

use super::super::*;
use super::{msg, one};
use serde_json::json;

#[test]
fn text_messages_give_their_body_sender_and_time() {
    let m = one(msg("text", json!({"body": "hello"})));
    assert_eq!(
        m.kind,
        MessageKind::Text {
            body: "hello".into()
        }
    );
    assert_eq!(
        (m.id.as_str(), m.sender()),
        ("wamid.1", Some("16505551234"))
    );
    assert_eq!((m.kind_name.as_str(), m.timestamp), ("text", 1_697_044_557));
}

#[test]
fn media_messages_keep_id_mime_caption_and_their_own_flags() {
    let image = one(msg(
        "image",
        json!({"id": "M1", "mime_type": "image/jpeg", "caption": "look",
                                         "sha256": "abc", "file_size": "111"}),
    ));
    let MessageKind::Image(media) = image.kind else {
        panic!("{:?}", image.kind)
    };
    assert_eq!(media.id.as_deref(), Some("M1"));
    assert_eq!(media.caption.as_deref(), Some("look"));
    assert_eq!(media.file_size, Some(111));

    let voice = one(msg(
        "audio",
        json!({"id": "A", "mime_type": "audio/ogg", "voice": true}),
    ));
    assert!(matches!(
        voice.kind,
        MessageKind::Audio(Media { voice: true, .. })
    ));
    let doc = one(msg(
        "document",
        json!({"id": "D", "filename": "a.pdf", "file_size": 2048}),
    ));
    let MessageKind::Document(media) = doc.kind else {
        panic!()
    };
    assert_eq!(
        (media.filename.as_deref(), media.file_size),
        (Some("a.pdf"), Some(2048))
    );
    let sticker = one(msg("sticker", json!({"id": "S", "animated": true})));
    assert!(matches!(
        sticker.kind,
        MessageKind::Sticker(Media { animated: true, .. })
    ));
    let video = one(msg("video", json!({"id": "V", "caption": "clip"})));
    assert!(matches!(
        video.kind,
        MessageKind::Video(Media {
            caption: Some(_),
            ..
        })
    ));
}

#[test]
fn locations_contacts_buttons_and_system_messages_are_read() {
    let loc = one(msg(
        "location",
        json!({"latitude": "12.5", "longitude": 43.9, "name": "Cafe"}),
    ));
    let MessageKind::Location(loc) = loc.kind else {
        panic!()
    };
    assert_eq!((loc.latitude, loc.longitude), (Some(12.5), Some(43.9)));
    assert_eq!(loc.name.as_deref(), Some("Cafe"));

    let cards = json!([{"name": {"first_name": "Ross", "last_name": "Geller"},
                        "phones": [{"phone": "+1 555", "type": "CELL"}],
                        "emails": [{"email": "ross@example.com"}]}]);
    let MessageKind::Contacts(cards) = one(msg("contacts", cards)).kind else {
        panic!()
    };
    assert_eq!(cards[0].name.as_deref(), Some("Ross Geller"));
    assert_eq!(
        (cards[0].phones.as_slice(), cards[0].emails.len()),
        (&["+1 555".to_owned()][..], 1)
    );

    let button = one(msg("button", json!({"text": "Yes", "payload": "YES"})));
    let expected = MessageKind::Button {
        text: "Yes".into(),
        payload: Some("YES".into()),
    };
    assert_eq!(button.kind, expected);

    let system = one(msg(
        "system",
        json!({"body": "changed", "type": "user_changed_number",
                                          "wa_id": "NEW"}),
    ));
    let MessageKind::System(event) = system.kind else {
        panic!()
    };
    assert_eq!(event.new_wa_id.as_deref(), Some("NEW"));
    assert_eq!(event.system_type.as_deref(), Some("user_changed_number"));

    let welcome = one(json!({"from": "1", "id": "w", "timestamp": 1, "type": "request_welcome"}));
    assert_eq!(welcome.kind, MessageKind::RequestWelcome);
}

#[test]
fn interactive_replies_say_what_the_user_tapped() {
    let button = one(msg(
        "interactive",
        json!({"type": "button_reply",
        "button_reply": {"id": "b1", "title": "Book"}}),
    ));
    let expected = InteractiveReply::ButtonReply {
        id: "b1".into(),
        title: "Book".into(),
    };
    assert_eq!(button.kind, MessageKind::Interactive(expected));

    let list = one(msg(
        "interactive",
        json!({"type": "list_reply",
        "list_reply": {"id": "r1", "title": "Row", "description": "More"}}),
    ));
    assert!(
        matches!(list.kind, MessageKind::Interactive(InteractiveReply::ListReply {
        ref title, description: Some(_), .. }) if title == "Row")
    );

    let flow = one(msg(
        "interactive",
        json!({"type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"a\":1}"}}),
    ));
    let MessageKind::Interactive(InteractiveReply::NfmReply { response_json, .. }) = flow.kind
    else {
        panic!()
    };
    assert_eq!(response_json.as_deref(), Some("{\"a\":1}"));

    let other =
        json!({"type": "call_permission_reply", "call_permission_reply": {"response": "accept"}});
    let call = one(msg("interactive", other.clone()));
    assert_eq!(
        call.kind,
        MessageKind::Interactive(InteractiveReply::Other(other))
    );
}

#[test]
fn a_reaction_with_an_empty_or_absent_emoji_is_a_removal() {
    let added = one(msg(
        "reaction",
        json!({"message_id": "wamid.0", "emoji": "👍"}),
    ));
    let expected = MessageKind::Reaction {
        message_id: Some("wamid.0".into()),
        emoji: Some("👍".into()),
    };
    assert_eq!(added.kind, expected);
    for removal in [
        json!({"message_id": "wamid.0", "emoji": ""}),
        json!({"message_id": "wamid.0"}),
    ] {
        let removed = one(msg("reaction", removal));
        assert!(matches!(
            removed.kind,
            MessageKind::Reaction { emoji: None, .. }
        ));
    }
}

#[test]
fn order_quantities_and_prices_are_read_from_numbers_or_strings() {
    let order = one(msg(
        "order",
        json!({"catalog_id": "C", "text": "fast please", "product_items": [
            {"product_retailer_id": "A", "quantity": "3", "item_price": "30.5", "currency": "EUR"},
            {"product_retailer_id": "B", "quantity": 2, "item_price": 10, "currency": "EUR"},
            {"product_retailer_id": "C", "quantity": "number-of-item", "item_price": "unitary-price"}
        ]}),
    ));
    let MessageKind::Order(order) = order.kind else {
        panic!()
    };
    let lines: Vec<(u64, f64)> = order
        .product_items
        .iter()
        .map(|i| (i.quantity, i.item_price))
        .collect();
    assert_eq!(lines, vec![(3, 30.5), (2, 10.0), (0, 0.0)]);
    assert_eq!(order.text.as_deref(), Some("fast please"));
}

#[test]
fn edits_revokes_unsupported_and_unknown_types_are_kept() {
    let edit = one(msg(
        "edit",
        json!({"original_message_id": "wamid.0",
        "message": {"type": "text", "text": {"body": "fixed"}}}),
    ));
    let MessageKind::Edit {
        original_message_id,
        new_kind_name,
        new,
    } = edit.kind
    else {
        panic!()
    };
    assert_eq!(
        (original_message_id.as_deref(), new_kind_name.as_str()),
        (Some("wamid.0"), "text")
    );
    assert_eq!(
        *new,
        MessageKind::Text {
            body: "fixed".into()
        }
    );

    let revoke = one(msg("revoke", json!({"original_message_id": "wamid.0"})));
    assert_eq!(
        revoke.kind,
        MessageKind::Revoke {
            original_message_id: Some("wamid.0".into())
        }
    );

    let mut unsupported = msg("unsupported", json!({"type": "poll"}));
    unsupported["errors"] = json!([{"code": "131051", "title": "Unsupported",
                                     "error_data": {"details": "not supported"}}]);
    let unsupported = one(unsupported);
    assert_eq!(
        unsupported.kind,
        MessageKind::Unsupported {
            unsupported_type: Some("poll".into())
        }
    );
    assert_eq!(unsupported.errors[0].code, Some(131_051));
    assert_eq!(
        unsupported.errors[0].error_data_details.as_deref(),
        Some("not supported")
    );

    let hologram = one(msg("hologram", json!({"depth": 3})));
    assert_eq!(hologram.kind_name, "hologram");
    let expected = MessageKind::Unknown {
        type_name: "hologram".into(),
        raw: json!({"depth": 3}),
    };
    assert_eq!(hologram.kind, expected);
}

#[test]
fn a_message_without_a_type_is_typed_by_its_payload() {
    let m = one(json!({"from": "1", "id": "x", "timestamp": 5, "location": {"latitude": -23.5}}));
    assert_eq!(m.kind_name, "location");
    assert!(matches!(
        m.kind,
        MessageKind::Location(Location {
            latitude: Some(_),
            ..
        })
    ));
}

#[test]
fn a_message_missing_everything_is_kept_with_defaults() {
    let m = one(json!({}));
    assert_eq!((m.id.as_str(), m.sender(), m.timestamp), ("", None, 0));
    assert_eq!(m.kind_name, "unknown");
    let m = one(json!({"id": "z", "timestamp": "yesterday", "type": "text", "text": "flat"}));
    assert_eq!(
        (m.timestamp, m.kind),
        (
            0,
            MessageKind::Text {
                body: String::new()
            }
        )
    );
}

#[test]
fn context_marks_quotes_forwards_and_product_questions() {
    let mut m = msg("text", json!({"body": "this one?"}));
    m["context"] = json!({"from": "BIZ", "id": "wamid.0", "frequently_forwarded": true,
        "referred_product": {"catalog_id": "C", "product_retailer_id": "SKU"}});
    let context = one(m).context.expect("context");
    assert_eq!(context.id.as_deref(), Some("wamid.0"));
    assert!(context.frequently_forwarded && !context.forwarded);
    let product = context.referred_product.expect("product");
    assert_eq!(product.product_retailer_id.as_deref(), Some("SKU"));
}

#[test]
fn a_stored_raw_message_parses_back_to_the_same_message() {
    let m = one(msg("image", json!({"id": "M", "caption": "c"})));
    assert_eq!(m.raw, msg("image", json!({"id": "M", "caption": "c"})));
    assert_eq!(Message::from_value(&m.raw), m);
}

#[test]
fn a_contact_card_keeps_a_middle_name_and_a_phone_given_only_as_a_whatsapp_id() {
    let cards = json!([{"name": {"first_name": "Ana", "middle_name": "Maria", "last_name": "Souza"},
                        "phones": [{"wa_id": "5511999999999"}, {"phone": "  "}]}]);
    let MessageKind::Contacts(cards) = one(msg("contacts", cards)).kind else {
        panic!()
    };
    assert_eq!(cards[0].name.as_deref(), Some("Ana Maria Souza"));
    assert_eq!(cards[0].phones, vec!["5511999999999".to_owned()]);
}

#[test]
fn what_the_customer_typed_is_read_from_texts_buttons_and_replies_only() {
    let typed = |m: serde_json::Value| one(m).kind.typed_text().map(str::to_owned);
    assert_eq!(
        typed(msg("text", json!({"body": "STOP"}))).as_deref(),
        Some("STOP")
    );
    assert_eq!(
        typed(msg(
            "button",
            json!({"text": "Stop promotions", "payload": "P"})
        ))
        .as_deref(),
        Some("Stop promotions")
    );
    let list = json!({"type": "list_reply", "list_reply": {"id": "r", "title": "Agent"}});
    assert_eq!(typed(msg("interactive", list)).as_deref(), Some("Agent"));
    assert_eq!(
        typed(msg("image", json!({"id": "M", "caption": "STOP"}))),
        None
    );
}
