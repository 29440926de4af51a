//! What a message carries, by Meta's `type`: text, media, location, replies to buttons, ...

use super::lenient;
use serde_json::Value;

/// The content of a message, one variant per `type` Meta sends. Types wagate does not model
/// become [`MessageKind::Unknown`] with their JSON kept.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    /// `text`: what the user typed.
    Text { body: String },
    /// `image`: a photo, with an optional caption.
    Image(Media),
    /// `video`.
    Video(Media),
    /// `audio`: a file or a voice note (`Media::voice`).
    Audio(Media),
    /// `document`: any file (`Media::filename`).
    Document(Media),
    /// `sticker` (`Media::animated`).
    Sticker(Media),
    /// `location`: a pin or the user's current position.
    Location(Location),
    /// `contacts`: address-book cards the user shared.
    Contacts(Vec<SharedContact>),
    /// `interactive`: the user tapped a reply button, a list row, or finished a flow.
    Interactive(InteractiveReply),
    /// `button`: the user tapped a quick-reply button of a template.
    Button {
        text: String,
        payload: Option<String>,
    },
    /// `reaction`: an emoji on an earlier message; `emoji: None` means the reaction was removed.
    Reaction {
        message_id: Option<String>,
        emoji: Option<String>,
    },
    /// `order`: a cart sent from a catalog.
    Order(Order),
    /// `system`: the user changed number or identity.
    System(SystemEvent),
    /// `request_welcome`: the user opened the chat for the first time.
    RequestWelcome,
    /// `unsupported`: Meta could not deliver the content; the reasons are in `Message::errors`.
    Unsupported { unsupported_type: Option<String> },
    /// `edit`: the user edited an earlier message; `new` is the content after the edit.
    Edit {
        original_message_id: Option<String>,
        new_kind_name: String,
        new: Box<MessageKind>,
    },
    /// `revoke`: the user deleted an earlier message for everyone.
    Revoke { original_message_id: Option<String> },
    /// Any other `type` (including Meta's own `unknown`); `raw` is the object under that type's
    /// key, or `null` when there is none.
    Unknown { type_name: String, raw: Value },
}

/// A media attachment (image, video, audio, document, sticker). Download it by `id` through the
/// Graph API; the fields a type does not use stay empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Media {
    /// The media id for `GET /{media_id}`.
    pub id: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    /// Size in bytes when the sender says (not in Meta's webhook today; number or string).
    pub file_size: Option<u64>,
    /// Documents only: the file's name.
    pub filename: Option<String>,
    /// Audio only: recorded as a voice note.
    pub voice: bool,
    /// Stickers only: animated.
    pub animated: bool,
    /// A direct URL when the webhook carries one (it still needs the bearer token).
    pub url: Option<String>,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

/// One shared contact card, kept loosely: enough to describe it; the rest stays in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedContact {
    /// `name.formatted_name`, else first and last name joined.
    pub name: Option<String>,
    /// `phones[].phone` as written on the card.
    pub phones: Vec<String>,
    /// `emails[].email`.
    pub emails: Vec<String>,
    /// The whole card as received (addresses, org, urls, birthday...).
    pub raw: Value,
}

/// What the user chose in an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractiveReply {
    /// A reply button.
    ButtonReply { id: String, title: String },
    /// A row of a list message.
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// A completed WhatsApp Flow; `response_json` is the flow's answer as a JSON string.
    NfmReply {
        name: Option<String>,
        body: Option<String>,
        response_json: Option<String>,
    },
    /// Anything else (`call_permission_reply`, a missing `interactive` object...), kept as sent.
    Other(Value),
}

/// A cart from a catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    pub catalog_id: Option<String>,
    /// The note sent with the order.
    pub text: Option<String>,
    pub product_items: Vec<ProductItem>,
}

/// One line of an order. Unreadable numbers are 0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductItem {
    pub product_retailer_id: Option<String>,
    pub quantity: u64,
    pub item_price: f64,
    pub currency: Option<String>,
}

/// A `system` message: the user changed number (`user_changed_number`) or identity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemEvent {
    pub body: Option<String>,
    /// `system.type`, e.g. `user_changed_number`, `customer_identity_changed`.
    pub system_type: Option<String>,
    /// `system.wa_id`: the user's new WhatsApp id after a number change.
    pub new_wa_id: Option<String>,
    /// `system.customer`: the previous id, when sent.
    pub customer: Option<String>,
}

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
            name: lenient::string(v, "name"),
            address: lenient::string(v, "address"),
            url: lenient::string(v, "url"),
        }
    }
}

impl SharedContact {
    fn from_value(v: &Value) -> Self {
        let name_obj = v.get("name").unwrap_or(&Value::Null);
        let name = lenient::string(name_obj, "formatted_name").or_else(|| {
            let parts: Vec<String> = ["first_name", "last_name"]
                .iter()
                .filter_map(|key| lenient::string(name_obj, key))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let collect = |list: &str, key: &str| -> Vec<String> {
            lenient::array(v, list)
                .iter()
                .filter_map(|item| lenient::string(item, key))
                .collect()
        };
        SharedContact {
            name,
            phones: collect("phones", "phone"),
            emails: collect("emails", "email"),
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
