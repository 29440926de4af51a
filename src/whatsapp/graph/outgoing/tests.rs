use super::*;

#[test]
fn a_text_body_is_the_plain_text_shape_with_its_quote_and_callback_data() {
    let body =
        OutgoingMessage::text("hi").request_body("155500", Some("wamid.in"), Some("wagate:ab:7:0"));
    assert_eq!(
        body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "155500",
               "type": "text", "text": {"body": "hi", "preview_url": false},
               "context": {"message_id": "wamid.in"}, "biz_opaque_callback_data": "wagate:ab:7:0"})
    );
}

#[test]
fn a_reaction_and_a_template_never_quote() {
    let reaction = OutgoingMessage::Reaction {
        message_id: "wamid.in".into(),
        emoji: "👍".into(),
    };
    let body = reaction.request_body("1", Some("wamid.in"), None);
    assert!(body.get("context").is_none());
    assert_eq!(
        body["reaction"],
        json!({"message_id": "wamid.in", "emoji": "👍"})
    );
    let template = OutgoingMessage::Template {
        name: "hello".into(),
        language: "en_US".into(),
        components: Vec::new(),
    };
    let body = template.request_body("1", Some("wamid.in"), None);
    assert!(body.get("context").is_none());
    assert_eq!(
        body["template"],
        json!({"name": "hello", "language": {"code": "en_US"}})
    );
}

#[test]
fn a_template_carries_its_components_as_written() {
    let template = OutgoingMessage::Template {
        name: "order_update".into(),
        language: "es".into(),
        components: vec![json!({"type": "body", "parameters": [{"type": "text", "text": "Ana"}]})],
    };
    assert_eq!(
        template.request_body("1", None, None)["template"],
        json!({"name": "order_update", "language": {"code": "es"},
               "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]})
    );
}

#[test]
fn memory_names_the_ids_that_say_more_than_their_titles() {
    let list = OutgoingMessage::List {
        body: "Pick".into(),
        button: "Menu".into(),
        rows: vec![
            Choice {
                id: "sku-42".into(),
                title: "Blue shirt".into(),
                description: None,
            },
            Choice {
                id: "red_shirt".into(),
                title: "Red shirt".into(),
                description: None,
            },
        ],
    };
    assert_eq!(
        list.memory_text(),
        "Pick\n[list \"Menu\": Blue shirt (sku-42) | Red shirt]"
    );
    assert_eq!(
        list.describe(),
        "Pick\n[list \"Menu\": Blue shirt | Red shirt]"
    );
}

#[test]
fn a_saved_message_reads_back_the_same() {
    let list = OutgoingMessage::List {
        body: "Pick".into(),
        button: "Sizes".into(),
        rows: vec![Choice {
            id: "s".into(),
            title: "Small".into(),
            description: Some("fits all".into()),
        }],
    };
    let saved = serde_json::to_string(&list).unwrap();
    assert_eq!(
        serde_json::from_str::<OutgoingMessage>(&saved).unwrap(),
        list
    );
}
