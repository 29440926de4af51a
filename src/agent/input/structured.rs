//! Short texts for messages that carry structured data: locations, shared contacts, orders,
//! and interactive replies (buttons, lists, flows).

use super::{non_blank, InputPart, UNSUPPORTED};
use crate::whatsapp::payload::{
    InteractiveReply, Location, Order, ProductItem, Scalar, SharedContact,
};
use serde_json::Value as Json;

/// `[Location: name, address (lat, lon) url]`, with only the parts present.
pub(super) fn location(location: &Location) -> String {
    let mut text = [&location.name, &location.address]
        .into_iter()
        .filter_map(words)
        .collect::<Vec<_>>()
        .join(", ");
    if let (Some(lat), Some(lon)) = (&location.latitude_as_sent, &location.longitude_as_sent) {
        push_spaced(&mut text, &format!("({lat}, {lon})"));
    }
    if let Some(url) = words(&location.url) {
        push_spaced(&mut text, url);
    }
    bracketed("Location", &text)
}

/// One `[Shared contact: Name, +phone, email]` line per contact.
pub(super) fn contacts(cards: &[SharedContact]) -> String {
    if cards.is_empty() {
        return "[Shared contact]".into();
    }
    cards.iter().map(contact).collect::<Vec<_>>().join("\n")
}

fn contact(card: &SharedContact) -> String {
    let fields: Vec<&str> = words(&card.name)
        .into_iter()
        .chain(card.phones.iter().map(String::as_str))
        .chain(card.emails.iter().map(String::as_str))
        .collect();
    bracketed("Shared contact", &fields.join(", "))
}

/// `[Order: 2 × SKU at 10.00 USD, ...; note: text]`.
pub(super) fn order(order: &Order) -> String {
    let items: Vec<String> = order.product_items.iter().map(order_item).collect();
    let mut text = items.join(", ");
    if let Some(note) = words(&order.text) {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str("note: ");
        text.push_str(note);
    }
    bracketed("Order", &text)
}

fn order_item(item: &ProductItem) -> String {
    let quantity = item
        .quantity_as_sent
        .as_ref()
        .map_or_else(|| "1".into(), Scalar::to_string);
    let product = words(&item.product_retailer_id).unwrap_or("item");
    let mut text = format!("{quantity} × {product}");
    if let Some(price) = price(item) {
        text.push_str(" at ");
        text.push_str(&price);
        if let Some(currency) = words(&item.currency) {
            text.push(' ');
            text.push_str(currency);
        }
    }
    text
}

/// Prices sent as numbers get two decimals (`10.00`); strings are shown as sent.
fn price(item: &ProductItem) -> Option<String> {
    match item.item_price_as_sent.as_ref()? {
        Scalar::Number(n) => n.as_f64().map(|p| format!("{p:.2}")),
        text => Some(text.to_string()),
    }
}

/// Interactive replies become what the user tapped or filled in.
pub(super) fn interactive(reply: &InteractiveReply) -> InputPart {
    match reply {
        InteractiveReply::NfmReply {
            body,
            response_json,
            ..
        } => InputPart::Text(flow_reply(body.as_deref(), response_json.as_deref())),
        // A flow reply without its answers object.
        InteractiveReply::Other(_) if reply.reply_type() == "nfm_reply" => {
            InputPart::Text("[Form response]".into())
        }
        // The user answered a call-permission request: an event, not something to answer.
        InteractiveReply::Other(_) if reply.reply_type() == "call_permission_reply" => {
            InputPart::Skip
        }
        // button_reply, list_reply, and any future reply carrying a title.
        _ => match reply.title() {
            Some(title) => InputPart::Text(title.to_owned()),
            None => InputPart::Text(UNSUPPORTED.into()),
        },
    }
}

/// A WhatsApp Flow's answers as `[Form response: field=value, ...]` (the `flow_token` is
/// plumbing, not the user's words); the flow's `body` when the answers are not readable.
fn flow_reply(body: Option<&str>, response_json: Option<&str>) -> String {
    let answers = response_json
        .and_then(non_blank)
        .and_then(|raw| serde_json::from_str::<Json>(raw).ok())
        .and_then(|json| match json {
            Json::Object(map) => Some(map),
            _ => None,
        })
        .map(|map| {
            // Sorted by key, so the text does not depend on serde_json's map features.
            let mut fields: Vec<_> = map
                .iter()
                .filter(|(key, _)| key.as_str() != "flow_token")
                .collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            fields
                .into_iter()
                .map(|(key, value)| match value {
                    Json::String(s) => format!("{key}={s}"),
                    other => format!("{key}={other}"),
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !answers.is_empty() {
        return bracketed("Form response", &answers.join(", "));
    }
    match body.and_then(non_blank) {
        Some(body) => bracketed("Form response", body),
        None => "[Form response]".into(),
    }
}

/// A field that holds something other than whitespace.
fn words(field: &Option<String>) -> Option<&str> {
    field.as_deref().and_then(non_blank)
}

/// `[Label: text]`, or `[Label]` when there is nothing to say.
fn bracketed(label: &str, text: &str) -> String {
    if text.is_empty() {
        format!("[{label}]")
    } else {
        format!("[{label}: {text}]")
    }
}

fn push_spaced(text: &mut String, part: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(part);
}
