//! The message objects of a webhook body as the exact text Meta sent. The inbox stores that
//! text instead of serialising the parsed message again, which cost about a tenth of a webhook's
//! CPU for 2 KB messages.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, default)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow, default)]
    value: Option<ChangeValue<'a>>,
}

#[derive(Deserialize)]
struct ChangeValue<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
}

/// The text of every `entry[].changes[].value.messages[]` item, one list per change, changes
/// in body order (the order `payload::parse` gives them). `None` when the body is not shaped
/// as usual; the caller then serialises the parsed messages.
pub(super) fn message_texts(body: &[u8]) -> Option<Vec<Vec<&str>>> {
    let body: Body = serde_json::from_slice(body).ok()?;
    let texts = body
        .entry
        .into_iter()
        .flat_map(|entry| entry.changes)
        .map(|change| {
            change
                .value
                .map(|v| v.messages.into_iter().map(RawValue::get).collect())
                .unwrap_or_default()
        })
        .collect();
    Some(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_as_sent_per_change() {
        let body = br#"{"entry":[{"id":"1","changes":[
            {"field":"messages","value":{"messages":[{"id":"a", "text":{"body":"\u00e9"}},{"id":"b"}]}},
            {"field":"statuses","value":{"statuses":[]}}]},
            {"changes":[{"value":{"messages":[{"id":"c"}]}}]}]}"#;
        let texts = message_texts(body).expect("usual shape");
        assert_eq!(
            texts,
            vec![
                vec![r#"{"id":"a", "text":{"body":"\u00e9"}}"#, r#"{"id":"b"}"#],
                vec![],
                vec![r#"{"id":"c"}"#],
            ]
        );
    }

    #[test]
    fn an_unusual_shape_gives_nothing_rather_than_a_wrong_pairing() {
        assert!(message_texts(br#"{"entry":{"changes":[]}}"#).is_none());
        assert!(message_texts(br#"{"entry":[{"changes":[{"value":"text"}]}]}"#).is_none());
        assert!(message_texts(b"[1]").is_none());
    }
}
