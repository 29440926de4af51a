//! The webhook parser never panics: not on arbitrary bytes, not on arbitrary JSON, not on real
//! bodies with keys deleted and types changed. What it reads survives the inbox's re-parse.

use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::LazyLock;
use wagate::whatsapp::payload::{parse, parse_value, Message, Webhook};

/// The real bodies kept in the repository (a sample of the shared corpus).
static CORPUS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/webhooks exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read(p).expect("fixture is readable");
            serde_json::from_slice(&text).expect("fixture is JSON")
        })
        .collect()
});

/// The keys webhook bodies use, so generated objects reach the readers behind them.
const KEYS: &[&str] = &[
    "object",
    "entry",
    "id",
    "changes",
    "field",
    "value",
    "messaging_product",
    "metadata",
    "phone_number_id",
    "display_phone_number",
    "contacts",
    "wa_id",
    "user_id",
    "profile",
    "name",
    "messages",
    "statuses",
    "errors",
    "from",
    "from_user_id",
    "timestamp",
    "type",
    "text",
    "body",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "latitude",
    "longitude",
    "reaction",
    "emoji",
    "message_id",
    "interactive",
    "button_reply",
    "list_reply",
    "nfm_reply",
    "button",
    "payload",
    "order",
    "product_items",
    "system",
    "context",
    "forwarded",
    "referred_product",
    "referral",
    "status",
    "recipient_id",
    "pricing",
    "conversation",
    "code",
    "title",
    "error_data",
    "details",
    "mime_type",
    "sha256",
    "caption",
    "filename",
    "url",
    "voice",
    "unsupported",
    "edit",
    "revoke",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(KEYS).prop_map(Value::from),
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "\\PC{0,8}"]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body with the webhook's skeleton and generated content where the messages, statuses and
/// contacts go, so the message and status readers see arbitrary values.
fn shaped_body() -> impl Strategy<Value = Value> {
    (
        json(),
        json(),
        json(),
        json(),
        prop::sample::select(vec!["messages", "calls", ""]),
    )
        .prop_map(|(message, status, contact, metadata, field)| {
            serde_json::json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": field, "value": {
                    "metadata": metadata,
                    "contacts": [contact],
                    "messages": [message],
                    "statuses": [status],
                }}]}]
            })
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Replace(Value),
    /// The value written as a JSON string, as senders that quote numbers do.
    Stringify,
    WrapInArray,
}

fn mutation() -> impl Strategy<Value = (Vec<usize>, Mutation)> {
    let kind = prop_oneof![
        3 => Just(Mutation::Delete),
        3 => leaf().prop_map(Mutation::Replace),
        1 => json().prop_map(Mutation::Replace),
        2 => Just(Mutation::Stringify),
        1 => Just(Mutation::WrapInArray),
    ];
    (prop::collection::vec(any::<usize>(), 1..10), kind)
}

/// Applies `mutation` at the node reached by following `path` (each step picks a child modulo
/// the number of children, stopping early at a leaf).
fn mutate(value: &mut Value, path: &[usize], mutation: Mutation) {
    let Some((&step, deeper)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let Some(key) = map.keys().nth(step % map.len()).cloned() else {
                return;
            };
            let child_is_leaf = map
                .get(&key)
                .is_none_or(|c| !(c.is_object() || c.is_array()));
            if deeper.is_empty() || child_is_leaf {
                apply_at(map, key, mutation);
            } else if let Some(child) = map.get_mut(&key) {
                mutate(child, deeper, mutation);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = step % items.len();
            if deeper.is_empty() {
                match mutation {
                    Mutation::Delete => {
                        items.remove(i);
                    }
                    other => transform(&mut items[i], other),
                }
            } else {
                mutate(&mut items[i], deeper, mutation);
            }
        }
        _ => {}
    }
}

fn apply_at(map: &mut Map<String, Value>, key: String, mutation: Mutation) {
    match mutation {
        Mutation::Delete => {
            map.remove(&key);
        }
        other => {
            if let Some(child) = map.get_mut(&key) {
                transform(child, other);
            }
        }
    }
}

fn transform(value: &mut Value, mutation: Mutation) {
    *value = match mutation {
        Mutation::Delete => Value::Null,
        Mutation::Replace(new) => new,
        Mutation::Stringify => match &*value {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        },
        Mutation::WrapInArray => Value::Array(vec![value.take()]),
    };
}

/// What the inbox relies on after a parse: counts agree, and the stored raw message reads back
/// to the same message.
fn check_readable(webhook: &Webhook) -> Result<(), TestCaseError> {
    let counted: usize = webhook.changes.iter().map(|c| c.messages.len()).sum();
    prop_assert_eq!(webhook.messages().count(), counted);
    for (change, message) in webhook.messages() {
        let _ = change.contact_name_for(message);
        let _ = change.phone_number_id();
        let again = Message::from_value(&message.raw);
        prop_assert_eq!(&again.id, &message.id);
        prop_assert_eq!(&again.kind, &message.kind);
    }
    for (_, status) in webhook.statuses() {
        let _ = (status.status.rank(), status.status.is_terminal());
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::cases(300))]

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&body);
    }

    #[test]
    fn the_parser_reads_any_json_object_and_refuses_anything_else(value in json()) {
        let bytes = serde_json::to_vec(&value).expect("a Value serialises");
        match parse(&bytes) {
            Ok(webhook) => {
                prop_assert!(value.is_object());
                check_readable(&webhook)?;
            }
            Err(_) => prop_assert!(!value.is_object()),
        }
    }

    #[test]
    fn the_parser_reads_arbitrary_messages_statuses_and_contacts(body in shaped_body()) {
        let webhook = parse_value(body.clone()).expect("an object is always read");
        check_readable(&webhook)?;
        let bytes = serde_json::to_vec(&body).expect("a Value serialises");
        // The same messages from the bytes (compared by type: a float need not print back to
        // the same digits, and an id may be a float here).
        let from_bytes = parse(&bytes).expect("an object is always read");
        // A numeric `type` may print back with other digits (serde_json's float parsing is not
        // exact round-trip), so numbers compare as "a number".
        let types = |w: &Webhook| {
            w.messages()
                .map(|(_, m)| match m.kind_name.parse::<f64>() {
                    Ok(_) => "<number>".to_owned(),
                    Err(_) => m.kind_name.clone(),
                })
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(types(&from_bytes), types(&webhook));
    }

    #[test]
    fn the_parser_reads_real_bodies_with_keys_deleted_and_types_changed(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut body = pick.get(&CORPUS).clone();
        for (path, m) in mutations {
            mutate(&mut body, &path, m);
        }
        let bytes = serde_json::to_vec(&body).expect("a Value serialises");
        let webhook = parse(&bytes).expect("the root stays an object");
        check_readable(&webhook)?;
    }
}

#[test]
fn every_real_body_in_the_fixtures_is_read() {
    assert!(CORPUS.len() >= 10, "fixtures missing");
    for body in CORPUS.iter() {
        let webhook = parse_value(body.clone()).expect("a real body is read");
        assert!(!webhook.changes.is_empty());
    }
}
