//! Webhook bodies shaped like Meta's: one `messages` change on the test number, signed by the
//! caller through [`super::TestServer::post_signed`].

use super::PHONE_NUMBER_ID;
use serde_json::{json, Value};

/// A body with one message object `message` from `from` (named Ana), as is.
pub fn one_message(from: &str, message: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [message]
        }}]}]
    }))
    .unwrap()
}

/// [`one_message`] with the message's `from`, `id` and `timestamp` filled in: stamped
/// `age_seconds` before now.
pub fn stamped(from: &str, id: &str, age_seconds: i64, message: Value) -> Vec<u8> {
    let mut message = message;
    message["from"] = json!(from);
    message["id"] = json!(id);
    message["timestamp"] = json!((chrono::Utc::now().timestamp() - age_seconds).to_string());
    one_message(from, message)
}

/// One text message from `from`, stamped `age_seconds` ago.
pub fn text(id: &str, from: &str, text: &str, age_seconds: i64) -> Vec<u8> {
    stamped(
        from,
        id,
        age_seconds,
        json!({"type": "text", "text": {"body": text}}),
    )
}

/// A body with one text message per `(message_id, from, text)`, each from "User <from>",
/// stamped at a fixed time in 2023.
pub fn text_body(messages: &[(&str, &str, &str)]) -> Vec<u8> {
    let msgs: Vec<_> = messages
        .iter()
        .map(|(id, from, text)| {
            json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}})
        })
        .collect();
    let contacts: Vec<_> = messages
        .iter()
        .map(|(_, from, _)| json!({"profile": {"name": format!("User {from}")}, "wa_id": from}))
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": contacts,
            "messages": msgs
        }}]}]
    }))
    .unwrap()
}
