//! Behaviour of the parser on small inline bodies; real bodies are tested in `tests/it/payload.rs`.

mod body;
mod kinds;

use super::*;
use serde_json::{json, Value};

/// A one-change body around the given messages and contacts, as Meta shapes it.
fn body(messages: Value, contacts: Value) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID"},
            "contacts": contacts,
            "messages": messages
        }}]}]
    })
    .to_string()
    .into_bytes()
}

/// The only message of a body made of `message`.
fn one(message: Value) -> Message {
    let webhook = parse(&body(json!([message]), json!([]))).expect("parses");
    let mut messages: Vec<Message> = webhook.messages().map(|(_, m)| m.clone()).collect();
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

/// A message of `type_name` from one user, with `payload` under the type's key.
fn msg(type_name: &str, payload: Value) -> Value {
    json!({"from": "16505551234", "id": "wamid.1", "timestamp": "1697044557",
           "type": type_name, type_name: payload})
}
