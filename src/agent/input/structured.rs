//! Short texts for messages that carry structured data: locations, shared contacts, orders,
//! and interactive replies (buttons, lists, flows).

use super::{scalar_field, str_field, InputPart, UNSUPPORTED};
use serde_json::Value as Json;

/// `[Location: name, address (lat, lon) url]`, with only the parts present.
pub(super) fn location(location: Option<&Json>) -> String {
    let Some(location) = location else {
        return "[Location]".into();
    };
    let mut text = ["name", "address"]
        .iter()
        .filter_map(|field| str_field(location, field))
        .collect::<Vec<_>>()
        .join(", ");
    let latitude = scalar_field(location, "latitude");
    let longitude = scalar_field(location, "longitude");
    if let (Some(lat), Some(lon)) = (latitude, longitude) {
        push_spaced(&mut text, &format!("({lat}, {lon})"));
    }
    if let Some(url) = str_field(location, "url") {
        push_spaced(&mut text, url);
    }
    bracketed("Location", &text)
}

/// One `[Shared contact: Name, +phone, email]` line per contact.
pub(super) fn contacts(contacts: Option<&Json>) -> String {
    let lines: Vec<String> = contacts
        .and_then(Json::as_array)
        .map(|all| all.iter().map(contact).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        return "[Shared contact]".into();
    }
    lines.join("\n")
}

fn contact(contact: &Json) -> String {
    let mut fields: Vec<String> = Vec::new();
    if let Some(name) = contact.get("name").and_then(contact_name) {
        fields.push(name);
    }
    let listed = |list: &str, field: &str, fallback: &str| -> Vec<String> {
        contact
            .get(list)
            .and_then(Json::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| str_field(item, field).or(str_field(item, fallback)))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    fields.extend(listed("phones", "phone", "wa_id"));
    fields.extend(listed("emails", "email", "email"));
    bracketed("Shared contact", &fields.join(", "))
}

fn contact_name(name: &Json) -> Option<String> {
    if let Some(formatted) = str_field(name, "formatted_name") {
        return Some(formatted.to_owned());
    }
    let parts: Vec<&str> = ["first_name", "middle_name", "last_name"]
        .iter()
        .filter_map(|field| str_field(name, field))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `[Order: 2 × SKU at 10.00 USD, ...; note: text]`.
pub(super) fn order(order: Option<&Json>) -> String {
    let Some(order) = order else {
        return "[Order]".into();
    };
    let items: Vec<String> = order
        .get("product_items")
        .and_then(Json::as_array)
        .map(|items| items.iter().map(order_item).collect())
        .unwrap_or_default();
    let mut text = items.join(", ");
    if let Some(note) = str_field(order, "text") {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str("note: ");
        text.push_str(note);
    }
    bracketed("Order", &text)
}

fn order_item(item: &Json) -> String {
    let quantity = scalar_field(item, "quantity").unwrap_or_else(|| "1".into());
    let product = str_field(item, "product_retailer_id").unwrap_or("item");
    let mut text = format!("{quantity} × {product}");
    if let Some(price) = price(item) {
        text.push_str(" at ");
        text.push_str(&price);
        if let Some(currency) = str_field(item, "currency") {
            text.push(' ');
            text.push_str(currency);
        }
    }
    text
}

/// Prices sent as numbers get two decimals (`10.00`); strings are shown as sent.
fn price(item: &Json) -> Option<String> {
    match item.get("item_price")? {
        Json::Number(n) => n.as_f64().map(|p| format!("{p:.2}")),
        _ => scalar_field(item, "item_price"),
    }
}

/// Interactive replies become what the user tapped or filled in.
pub(super) fn interactive(interactive: Option<&Json>) -> InputPart {
    let Some(interactive) = interactive else {
        return InputPart::Text(UNSUPPORTED.into());
    };
    let kind = str_field(interactive, "type").unwrap_or_default();
    let reply = interactive.get(kind);
    match kind {
        "nfm_reply" => InputPart::Text(flow_reply(reply)),
        // The user answered a call-permission request: an event, not something to answer.
        "call_permission_reply" => InputPart::Skip,
        // button_reply, list_reply, and any future reply carrying a title.
        _ => match reply.and_then(|r| str_field(r, "title")) {
            Some(title) => InputPart::Text(title.to_owned()),
            None => InputPart::Text(UNSUPPORTED.into()),
        },
    }
}

/// A WhatsApp Flow's answers as `[Form response: field=value, ...]` (the `flow_token` is
/// plumbing, not the user's words); the flow's `body` when the answers are not readable.
fn flow_reply(reply: Option<&Json>) -> String {
    let Some(reply) = reply else {
        return "[Form response]".into();
    };
    let answers = str_field(reply, "response_json")
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
    match str_field(reply, "body") {
        Some(body) => bracketed("Form response", body),
        None => "[Form response]".into(),
    }
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
