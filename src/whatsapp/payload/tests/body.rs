//! The body around the messages: refusals, odd shapes, several senders, statuses.

use super::super::*;
use super::{body, one};
use serde_json::json;

#[test]
fn bodies_that_are_not_json_objects_are_refused() {
    assert!(matches!(parse(b"not json"), Err(PayloadError::NotJson(_))));
    assert!(matches!(parse(b""), Err(PayloadError::NotJson(_))));
    for body in [&b"[]"[..], b"42", b"\"x\"", b"null", b"true"] {
        assert!(
            matches!(parse(body), Err(PayloadError::NotAnObject)),
            "{body:?}"
        );
    }
}

#[test]
fn an_empty_object_is_an_empty_webhook() {
    assert_eq!(parse(b"{}").expect("parses"), Webhook::default());
}

#[test]
fn odd_shapes_around_the_messages_are_skipped_without_failing() {
    let odd = [
        json!({"object": "whatsapp_business_account"}),
        json!({"entry": {"id": "not an array"}}),
        json!({"entry": [42, {"id": "x"}, {"changes": "nope"}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": 7}]}]}),
        json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": "x"}}]}]}),
    ];
    for body in odd {
        let webhook = parse(body.to_string().as_bytes()).expect("tolerated");
        assert_eq!(webhook.messages().count(), 0, "{body}");
    }
}

#[test]
fn a_change_of_an_unknown_field_keeps_its_value() {
    let value = json!({"event": "VERIFIED_ACCOUNT", "ban_info": {"waba_ban_state": "SCHEDULE"}});
    let body =
        json!({"entry": [{"id": "W", "changes": [{"field": "account_update", "value": value}]}]});
    let webhook = parse(body.to_string().as_bytes()).expect("parses");
    let change = &webhook.changes[0];
    assert_eq!(change.field, "account_update");
    assert_eq!(change.entry_id.as_deref(), Some("W"));
    assert_eq!(change.raw_value, value);
    assert!(change.messages.is_empty());
}

#[test]
fn an_empty_from_falls_back_to_the_business_scoped_user_id() {
    let m = one(
        json!({"from": "", "from_user_id": "US.1", "id": "x", "type": "text",
                       "text": {"body": "hi"}}),
    );
    assert_eq!((m.from.as_deref(), m.sender()), (None, Some("US.1")));
}

#[test]
fn contact_names_are_matched_by_id_not_by_position() {
    let messages = json!([
        {"from": "111", "id": "a", "type": "text", "text": {"body": "1"}},
        {"from": "", "from_user_id": "US.2", "id": "b", "type": "text", "text": {"body": "2"}},
        {"from": "333", "id": "c", "type": "text", "text": {"body": "3"}}
    ]);
    let contacts = json!([
        {"wa_id": "", "user_id": "US.2", "profile": {"name": "Bea"}},
        {"wa_id": "111", "profile": {"name": "Al"}}
    ]);
    let webhook = parse(&body(messages, contacts)).expect("parses");
    let names: Vec<Option<&str>> = webhook
        .messages()
        .map(|(c, m)| c.contact_name_for(m))
        .collect();
    assert_eq!(names, vec![Some("Al"), Some("Bea"), None]);
}

#[test]
fn a_message_naming_no_sender_takes_the_only_contact_of_its_change() {
    let anonymous = json!({"id": "a", "type": "text", "text": {"body": "1"}});
    let sole = json!([{"user_id": "US.9", "profile": {"name": "Cy"}}]);
    let webhook = parse(&body(json!([anonymous.clone()]), sole)).expect("parses");
    let (change, m) = webhook.messages().next().expect("one message");
    assert_eq!(
        (m.sender(), change.contact_name_for(m)),
        (Some("US.9"), Some("Cy"))
    );

    let two = json!([{"wa_id": "1"}, {"wa_id": "2"}]);
    let webhook = parse(&body(json!([anonymous]), two)).expect("parses");
    assert_eq!(
        webhook.messages().next().expect("one message").1.sender(),
        None
    );
}

#[test]
fn failed_statuses_keep_errors_and_pricing_without_contacts() {
    let body = json!({"entry": [{"changes": [{"field": "messages", "value": {
    "metadata": {"phone_number_id": "PNID"},
    "statuses": [
        {"id": "wamid.s", "status": "failed", "timestamp": 1689380458, "recipient_id": "97",
         "errors": [{"code": 131047, "title": "Re-engagement message",
                     "href": "https://developers.facebook.com/"}]},
        {"id": "wamid.t", "status": "delivered", "timestamp": "1690327464",
         "recipient_user_id": "US.5",
         "conversation": {"id": "CONV", "origin": {"type": "marketing"}},
         "pricing": {"billable": true, "pricing_model": "PMP", "category": "marketing",
                     "type": "regular"}}
    ]}}]}]});
    let webhook = parse(body.to_string().as_bytes()).expect("parses");
    let statuses: Vec<&Status> = webhook.statuses().map(|(_, s)| s).collect();
    assert_eq!(statuses[0].status, StatusKind::Failed);
    assert_eq!(statuses[0].errors[0].code, Some(131_047));
    assert_eq!(statuses[0].timestamp, 1_689_380_458);
    assert!(webhook.changes[0].contacts.is_empty());
    let pricing = statuses[1].pricing.as_ref().expect("pricing");
    assert_eq!(pricing.billable, Some(true));
    assert_eq!(pricing.pricing_type.as_deref(), Some("regular"));
    assert_eq!(statuses[1].recipient_user_id.as_deref(), Some("US.5"));
    assert_eq!(statuses[1].timestamp, 1_690_327_464);
    assert!(statuses[1].conversation.is_some());
    assert_eq!(webhook.changes[0].phone_number_id(), Some("PNID"));
}

#[test]
fn change_level_errors_are_kept() {
    let body = json!({"entry": [{"changes": [{"field": "messages", "value": {
        "errors": [{"code": 131000, "message": "Something went wrong",
                    "error_data": {"details": "Unsupported webhook payload"}}]}}]}]});
    let webhook = parse(body.to_string().as_bytes()).expect("parses");
    let error = &webhook.changes[0].errors[0];
    assert_eq!(error.code, Some(131_000));
    assert_eq!(
        error.error_data_details.as_deref(),
        Some("Unsupported webhook payload")
    );
}
