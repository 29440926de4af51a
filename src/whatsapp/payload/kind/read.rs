//! Reading a message object into a [`MessageKind`]: which `type`, then its fields, leniently.

use super::super::lenient;
use super::{
    InteractiveReply, Location, Media, MessageKind, Order, ProductItem, SharedContact, SystemEvent,
};
use serde_json::Value;

/// The Meta `type` names this module knows, for inferring a missing `type` from the payload key.
const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "unsupported",
    "edit",
    "revoke",
    "request_welcome",
];

/// Meta's `type` of `msg`; when absent, the first known type key present in the object (some
/// senders leave `type` out), else `unknown`.
pub(crate) fn type_name_of(msg: &Value) -> String {
    if let Some(name) = lenient::string(msg, "type") {
        return name;
    }
    KNOWN_TYPES
        .iter()
        // `contacts` is the only type whose payload is an array.
        .find(|name| {
            msg.get(**name)
                .is_some_and(|payload| payload.is_object() || payload.is_array())
        })
        .map_or_else(|| "unknown".to_owned(), |name| (*name).to_owned())
}

/// Reads the content of `msg` for the given `type`. Never fails: missing parts are empty.
pub(crate) fn parse_kind(msg: &Value, type_name: &str) -> MessageKind {
    let body = msg.get(type_name).unwrap_or(&Value::Null);
    match type_name {
        "text" => MessageKind::Text {
            body: lenient::text(body, "body"),
        },
        "image" => MessageKind::Image(Media::from_value(body)),
        "video" => MessageKind::Video(Media::from_value(body)),
        "audio" => MessageKind::Audio(Media::from_value(body)),
        "document" => MessageKind::Document(Media::from_value(body)),
        "sticker" => MessageKind::Sticker(Media::from_value(body)),
        "location" => MessageKind::Location(Location::from_value(body)),
        // The cards are the message's own `contacts` array, not an object under it.
        "contacts" => MessageKind::Contacts(
            lenient::array(msg, "contacts")
                .iter()
                .map(SharedContact::from_value)
                .collect(),
        ),
        "interactive" => MessageKind::Interactive(InteractiveReply::from_value(body)),
        "button" => MessageKind::Button {
            text: lenient::text(body, "text"),
            payload: lenient::string(body, "payload"),
        },
        "reaction" => MessageKind::Reaction {
            message_id: lenient::string(body, "message_id"),
            emoji: lenient::string(body, "emoji"),
        },
        "order" => MessageKind::Order(Order::from_value(body)),
        "system" => MessageKind::System(SystemEvent::from_value(body)),
        "request_welcome" => MessageKind::RequestWelcome,
        "unsupported" => MessageKind::Unsupported {
            unsupported_type: lenient::string(body, "type"),
        },
        "edit" => {
            let inner = body.get("message").unwrap_or(&Value::Null);
            let new_kind_name = type_name_of(inner);
            let new = Box::new(parse_kind(inner, &new_kind_name));
            MessageKind::Edit {
                original_message_id: lenient::string(body, "original_message_id"),
                new_kind_name,
                new,
            }
        }
        "revoke" => MessageKind::Revoke {
            original_message_id: lenient::string(body, "original_message_id"),
        },
        other => MessageKind::Unknown {
            type_name: other.to_owned(),
            raw: body.clone(),
        },
    }
}

impl Media {
    fn from_value(v: &Value) -> Self {
        Media {
            id: lenient::string(v, "id"),
            mime_type: lenient::string(v, "mime_type"),
            sha256: lenient::string(v, "sha256"),
            caption: lenient::string(v, "caption"),
            file_size: lenient::uint(v, "file_size"),
            filename: lenient::string(v, "filename"),
            voice: lenient::flag(v, "voice"),
            animated: lenient::flag(v, "animated"),
            url: lenient::string(v, "url"),
        }
    }
}

impl Location {
    fn from_value(v: &Value) -> Self {
        Location {
            latitude: lenient::float(v, "latitude"),
            longitude: lenient::float(v, "longitude"),
            latitude_as_sent: lenient::scalar(v, "latitude"),
            longitude_as_sent: lenient::scalar(v, "longitude"),
            name: lenient::string(v, "name"),
            address: lenient::string(v, "address"),
            url: lenient::string(v, "url"),
        }
    }
}

impl SharedContact {
    fn from_value(v: &Value) -> Self {
        let name_obj = v.get("name").unwrap_or(&Value::Null);
        let name = lenient::words(name_obj, "formatted_name").or_else(|| {
            let parts: Vec<String> = ["first_name", "middle_name", "last_name"]
                .iter()
                .filter_map(|key| lenient::words(name_obj, key))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        // A phone entry may carry only the WhatsApp id of the number.
        let collect = |list: &str, key: &str, fallback: &str| -> Vec<String> {
            lenient::array(v, list)
                .iter()
                .filter_map(|item| lenient::words(item, key).or(lenient::words(item, fallback)))
                .collect()
        };
        SharedContact {
            name,
            phones: collect("phones", "phone", "wa_id"),
            emails: collect("emails", "email", "email"),
            raw: v.clone(),
        }
    }
}

impl InteractiveReply {
    fn from_value(v: &Value) -> Self {
        let kind = lenient::string(v, "type").unwrap_or_default();
        let Some(reply) = v.get(&kind).filter(|r| r.is_object()) else {
            return InteractiveReply::Other(v.clone());
        };
        match kind.as_str() {
            "button_reply" => InteractiveReply::ButtonReply {
                id: lenient::text(reply, "id"),
                title: lenient::text(reply, "title"),
            },
            "list_reply" => InteractiveReply::ListReply {
                id: lenient::text(reply, "id"),
                title: lenient::text(reply, "title"),
                description: lenient::string(reply, "description"),
            },
            "nfm_reply" => InteractiveReply::NfmReply {
                name: lenient::string(reply, "name"),
                body: lenient::string(reply, "body"),
                response_json: lenient::string(reply, "response_json"),
            },
            _ => InteractiveReply::Other(v.clone()),
        }
    }
}

impl Order {
    fn from_value(v: &Value) -> Self {
        Order {
            catalog_id: lenient::string(v, "catalog_id"),
            text: lenient::string(v, "text"),
            product_items: lenient::array(v, "product_items")
                .iter()
                .map(|item| ProductItem {
                    product_retailer_id: lenient::string(item, "product_retailer_id"),
                    quantity: lenient::uint(item, "quantity").unwrap_or(0),
                    item_price: lenient::float(item, "item_price").unwrap_or(0.0),
                    quantity_as_sent: lenient::scalar(item, "quantity"),
                    item_price_as_sent: lenient::scalar(item, "item_price"),
                    currency: lenient::string(item, "currency"),
                })
                .collect(),
        }
    }
}

impl SystemEvent {
    fn from_value(v: &Value) -> Self {
        SystemEvent {
            body: lenient::string(v, "body"),
            system_type: lenient::string(v, "type"),
            new_wa_id: lenient::string(v, "wa_id"),
            customer: lenient::string(v, "customer"),
        }
    }
}
