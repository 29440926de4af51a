//! The webhook parser on real bodies: the fixtures in `tests/fixtures/webhooks`, and the whole
//! shared corpus when it is present on this machine.

use serde_json::Value;
use std::path::{Path, PathBuf};
use wagate::whatsapp::payload::{
    parse, InteractiveReply, Media, MessageKind, PreferenceValue, StatusKind, Webhook,
};

const CORPUS_DIR: &str = "/work/shared/corpus/webhooks";

fn fixture(name: &str) -> Webhook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(format!("{name}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The content of the only message of fixture `name`.
fn kind_of(name: &str) -> MessageKind {
    let webhook = fixture(name);
    let mut messages = webhook.messages();
    let (_, message) = messages.next().expect("a message");
    assert!(messages.next().is_none(), "exactly one message");
    message.kind.clone()
}

#[test]
fn two_entries_for_two_business_numbers_are_both_read() {
    let webhook = fixture("derived__multi_entry_two_wabas_two_phone_numbers");
    let numbers: Vec<Option<&str>> = webhook
        .changes
        .iter()
        .map(|c| c.phone_number_id())
        .collect();
    assert_eq!(
        numbers,
        vec![Some("PHONE_NUMBER_ID"), Some("102944729380254")]
    );
    let (change, message) = webhook
        .messages()
        .next()
        .expect("the message of the first entry");
    assert_eq!(
        (change.phone_number_id(), message.id.as_str()),
        (Some("PHONE_NUMBER_ID"), "wamid.ID")
    );
    let (change, status) = webhook
        .statuses()
        .next()
        .expect("the status of the second entry");
    assert_eq!(change.entry_id.as_deref(), Some("114957184830690"));
    assert_eq!(status.status, StatusKind::Failed);
    assert_eq!(status.errors[0].code, Some(131_053));
    assert!(
        change.contacts.is_empty(),
        "failed statuses come without contacts"
    );
}

#[test]
fn two_senders_in_one_change_each_get_their_own_name() {
    let webhook = fixture("derived__two_senders_one_change");
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = webhook
        .messages()
        .map(|(c, m)| (m.id.as_str(), m.sender(), c.contact_name_for(m)))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("wamid.ID", Some("PHONE_NUMBER"), Some("NAME")),
            ("wamid.ID2", Some("PHONE_NUMBER_2"), Some("NAME2")),
        ]
    );
}

#[test]
fn every_change_of_an_entry_is_read_not_just_the_first() {
    let webhook = fixture("netflie__multiple_text_notification");
    let bodies: Vec<&MessageKind> = webhook.messages().map(|(_, m)| &m.kind).collect();
    assert_eq!(
        bodies,
        vec![
            &MessageKind::Text {
                body: "MESSAGE_BODY".into()
            },
            &MessageKind::Text {
                body: "MESSAGE_BODY2".into()
            },
        ]
    );
}

#[test]
fn a_user_known_only_by_business_scoped_id_is_still_a_sender() {
    let webhook = fixture("netflie__a_notification_with_bsuid_only_and_no_from");
    let (change, message) = webhook.messages().next().expect("a message");
    assert_eq!(message.sender(), Some("BSUID_123"));
    assert_eq!(change.contact_name_for(message), Some("NAME"));
}

#[test]
fn the_phone_number_wins_over_the_business_scoped_id_when_both_are_known() {
    let webhook = fixture("netflie__can_keep_wa_id_priority_when_user_id_is_present");
    let (_, message) = webhook.messages().next().expect("a message");
    assert_eq!(message.sender(), Some("PHONE_NUMBER"));
}

#[test]
fn orders_are_read_whether_numbers_are_numbers_or_placeholders() {
    let MessageKind::Order(order) = kind_of("pywa__message__order") else {
        panic!()
    };
    let lines: Vec<(&str, u64, f64)> = order
        .product_items
        .iter()
        .map(|i| {
            (
                i.product_retailer_id.as_deref().unwrap_or(""),
                i.quantity,
                i.item_price,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("HAMBURGER", 3, 30.0),
            ("FRENCH_FRIES", 2, 35.0),
            ("SODA", 2, 10.0)
        ]
    );
    assert_eq!(order.text, None, "an empty note is no note");

    let MessageKind::Order(order) = kind_of("netflie__an_order_notification") else {
        panic!()
    };
    assert_eq!(order.product_items.len(), 2);
    assert!(order
        .product_items
        .iter()
        .all(|i| i.quantity == 0 && i.item_price == 0.0));
    assert_eq!(order.catalog_id.as_deref(), Some("the-catalog_id"));
}

#[test]
fn media_fixtures_keep_what_the_agent_needs_to_describe_them() {
    let MessageKind::Audio(media) = kind_of("pywa__message__voice") else {
        panic!()
    };
    assert!(media.voice);
    assert_eq!(media.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));

    let document = fixture("pywa__message__document");
    let MessageKind::Document(media) = kind_of("pywa__message__document") else {
        panic!()
    };
    assert_eq!(
        (media.filename.as_deref(), media.caption.as_deref()),
        (Some("filename.pdf"), Some("caption"))
    );
    let (_, message) = document.messages().next().expect("a message");
    assert!(message.context.as_ref().is_some_and(|c| c.forwarded));

    assert!(matches!(
        kind_of("pywa__message__media_with_url"),
        MessageKind::Image(Media {
            url: Some(_),
            id: Some(_),
            ..
        })
    ));
}

#[test]
fn a_customers_marketing_stop_and_resume_are_read_with_who_and_when() {
    let read = |name: &str| {
        let webhook = fixture(name);
        let change = &webhook.changes[0];
        assert_eq!(change.field, "user_preferences");
        assert_eq!(change.phone_number_id(), Some("106540352242922"));
        assert!(change.messages.is_empty());
        change.user_preferences[0].clone()
    };
    let stop = read("derived__user_marketing_preferences__stop");
    assert_eq!(stop.value, PreferenceValue::Stop);
    assert_eq!(stop.user(), Some("16505551234"));
    assert_eq!(stop.category, "marketing_messages");
    assert_eq!(stop.timestamp, 1_731_705_700);
    let resume = read("pywa__user_marketing_preferences__resume");
    assert_eq!(resume.value, PreferenceValue::Resume);
    assert_eq!(resume.timestamp, 1_731_705_721);
    let signup = read("pywa__user_marketing_preferences__signup");
    assert_eq!(signup.value, PreferenceValue::Other("signup".into()));
}

#[test]
fn a_reaction_names_the_reacted_message_and_the_emoji() {
    assert_eq!(
        kind_of("pywa__message__reaction"),
        MessageKind::Reaction {
            message_id: Some("wamid.yzxyzx=".into()),
            emoji: Some("😮".into()),
        }
    );
}

#[test]
fn shared_contacts_reactions_edits_and_unsupported_messages_are_read() {
    let MessageKind::Contacts(cards) = kind_of("pywa__message__contacts") else {
        panic!()
    };
    let names: Vec<Option<&str>> = cards.iter().map(|c| c.name.as_deref()).collect();
    assert_eq!(
        names,
        vec![Some("Chandler Bing"), Some("Monica"), Some("Rachel Green")]
    );
    assert_eq!(cards[0].phones, vec!["+1 555-555-5555".to_owned()]);

    assert!(matches!(
        kind_of("pywa__message__unreaction_empty"),
        MessageKind::Reaction {
            emoji: None,
            message_id: Some(_)
        }
    ));

    let MessageKind::Edit {
        new, new_kind_name, ..
    } = kind_of("pywa__edited_message__image")
    else {
        panic!()
    };
    assert_eq!(new_kind_name, "image");
    assert!(
        matches!(&*new, MessageKind::Image(m) if m.caption.as_deref() == Some("Updated image caption"))
    );

    let unsupported = fixture("pywa__message__unsupported_with_type");
    let (_, message) = unsupported.messages().next().expect("a message");
    assert_eq!(
        message.kind,
        MessageKind::Unsupported {
            unsupported_type: Some("pool".into())
        }
    );
    assert_eq!(message.errors[0].code, Some(131_051));
}

#[test]
fn interactive_template_and_system_replies_are_read() {
    let MessageKind::Interactive(InteractiveReply::NfmReply { response_json, .. }) =
        kind_of("pywa__flow_completion__completion")
    else {
        panic!()
    };
    let answer: Value =
        serde_json::from_str(response_json.as_deref().expect("json")).expect("valid");
    assert_eq!(answer["delivery_rating"], "4");

    assert!(matches!(
        kind_of("whatsapp-business-rs__interactive_list_reply"),
        MessageKind::Interactive(InteractiveReply::ListReply { .. })
    ));

    let expected = MessageKind::Button {
        text: "title".into(),
        payload: Some("callback_data".into()),
    };
    assert_eq!(kind_of("pywa__callback_button__quick_reply"), expected);

    let MessageKind::System(event) = kind_of("pywa__system__phone_number_change") else {
        panic!()
    };
    assert_eq!(event.new_wa_id.as_deref(), Some("972912345678"));
}

#[test]
fn a_location_without_a_type_is_still_a_location() {
    let webhook = fixture("whatsapp-business-rs__location_message");
    let (_, message) = webhook.messages().next().expect("a message");
    assert_eq!(
        (message.kind_name.as_str(), message.timestamp),
        ("location", 1_238_838_484)
    );
    let MessageKind::Location(location) = &message.kind else {
        panic!()
    };
    assert_eq!(location.name.as_deref(), Some("LOCATION_NAME"));
}

#[test]
fn non_ascii_text_arrives_intact() {
    let MessageKind::Text { body } = kind_of("cp4m__WAMessageHandlerTest__VALID_special_chars")
    else {
        panic!()
    };
    assert!(body.ends_with("!@#$%^&*()\u{2019}"), "{body}");
}

#[test]
fn statuses_keep_their_kind_pricing_and_conversation() {
    let played = fixture("pywa__message_status__played");
    let (_, status) = played.statuses().next().expect("a status");
    assert_eq!(
        (status.status.rank(), status.timestamp),
        (StatusKind::Played.rank(), 1_689_380_458)
    );
    assert_eq!(
        status.pricing.as_ref().and_then(|p| p.category.as_deref()),
        Some("service")
    );

    let priced = fixture("netflie__a_status_with_pricing_notification");
    let (_, status) = priced.statuses().next().expect("a status");
    assert_eq!(status.status, StatusKind::Delivered);
    assert_eq!(status.pricing.as_ref().and_then(|p| p.billable), Some(true));
    assert_eq!(
        status.conversation.as_ref().map(|c| &c["id"]),
        Some(&Value::from("CONVERSATION_ID"))
    );

    let failed = fixture("pywa__message_status__failed");
    let (_, status) = failed.statuses().next().expect("a status");
    assert!(status.status.is_terminal());
    assert_eq!(status.errors[0].code, Some(130_472));
    assert!(status.errors[0].error_data_details.is_some() && status.errors[0].href.is_some());
}

#[test]
fn account_and_call_updates_are_kept_whole_and_not_taken_for_messages() {
    let account = fixture("pywa__account_update__account_violation");
    assert_eq!(account.changes[0].field, "account_update");
    assert!(account.changes[0].raw_value.is_object());

    let call = fixture("pywa__call_status__call_status");
    assert_eq!(call.changes[0].field, "calls");
    assert_eq!(
        call.statuses().count(),
        0,
        "call statuses are not message statuses"
    );
    assert_eq!(
        call.changes[0].raw_value["statuses"][0]["status"],
        "RINGING"
    );
}

/// Counts `messages[]` items of `messages` changes straight from the JSON, independently of
/// the parser, to check that the parser finds every one of them.
fn messages_in_json(body: &Value) -> usize {
    let empty = Vec::new();
    let list = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .clone()
    };
    list(body, "entry")
        .iter()
        .flat_map(|entry| list(entry, "changes"))
        .filter(|change| change.get("field").and_then(Value::as_str) == Some("messages"))
        .map(|change| list(&change["value"], "messages").len())
        .sum()
}

fn corpus_files() -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(CORPUS_DIR).ok()?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Some(files)
}

#[test]
fn every_body_of_the_shared_corpus_is_read_in_full() {
    let Some(files) = corpus_files() else {
        eprintln!("note: {CORPUS_DIR} not found, skipping the corpus sweep");
        return;
    };
    let (mut messages, mut statuses, mut files_with_several) = (0, 0, 0);
    for path in &files {
        let name = path.display();
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let webhook = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value = serde_json::from_slice(&bytes).expect("corpus files are JSON");
        let found = webhook.messages().count();
        assert_eq!(
            found,
            messages_in_json(&json),
            "{name}: every message is found"
        );
        for (_, message) in webhook.messages() {
            assert!(!message.id.is_empty(), "{name}: a message without id");
            assert!(
                !message.kind_name.is_empty(),
                "{name}: a message without type"
            );
            let modelled = !matches!(message.kind, MessageKind::Unknown { .. });
            assert_eq!(
                modelled,
                message.kind_name != "unknown",
                "{name}: {}",
                message.kind_name
            );
        }
        for (_, status) in webhook.statuses() {
            assert!(!status.id.is_empty(), "{name}: a status without id");
        }
        messages += found;
        statuses += webhook.statuses().count();
        files_with_several += usize::from(found > 1);
    }
    eprintln!(
        "corpus: {} files, {messages} messages, {statuses} statuses",
        files.len()
    );
    assert!(files.len() > 100, "the corpus has over a hundred bodies");
    assert!(
        messages > 70,
        "only {messages} messages found in the corpus"
    );
    assert!(
        statuses > 15,
        "only {statuses} statuses found in the corpus"
    );
    assert!(
        files_with_several >= 2,
        "bodies with several messages are read in full"
    );
}
