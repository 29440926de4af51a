//! What a message carries, by Meta's `type`: text, media, location, replies to buttons, ...
//!
//! The one reader of Meta's message types: the webhook records `kind_name`, the agent
//! describes a [`MessageKind`] for the model, handoff reads what the customer typed from it.
//! Reading (which `type`, which fields, how leniently) is in `kind/read.rs`.

mod read;

pub use super::lenient::Scalar;
pub(crate) use read::{parse_kind, type_name_of};
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

/// The media types WhatsApp users can send (each has its own download limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    /// Meta's `type` for this kind, also the word the model and the logs read.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// The coordinates as sent (a number or a numeric string), for showing them unrounded.
    pub latitude_as_sent: Option<Scalar>,
    pub longitude_as_sent: Option<Scalar>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

/// One shared contact card, kept loosely: enough to describe it; the rest stays in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedContact {
    /// `name.formatted_name`, else first, middle and last name joined.
    pub name: Option<String>,
    /// `phones[].phone` as written on the card, else that entry's `wa_id`.
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
    /// `quantity` and `item_price` as sent: a price sent as text is shown as written.
    pub quantity_as_sent: Option<Scalar>,
    pub item_price_as_sent: Option<Scalar>,
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

impl MessageKind {
    /// Reads one message object: its `type` (inferred from the payload key when missing) and
    /// its content. Never fails.
    pub fn read(message: &Value) -> MessageKind {
        parse_kind(message, &type_name_of(message))
    }

    /// The attachment of a media message, with its kind.
    pub fn media(&self) -> Option<(MediaKind, &Media)> {
        match self {
            MessageKind::Image(media) => Some((MediaKind::Image, media)),
            MessageKind::Audio(media) => Some((MediaKind::Audio, media)),
            MessageKind::Video(media) => Some((MediaKind::Video, media)),
            MessageKind::Document(media) => Some((MediaKind::Document, media)),
            MessageKind::Sticker(media) => Some((MediaKind::Sticker, media)),
            _ => None,
        }
    }

    /// What the customer typed or tapped: a text's body, a template button's text, a reply
    /// button's or list row's title. Keywords (handoff, opt-out) are matched against it.
    pub fn typed_text(&self) -> Option<&str> {
        match self {
            MessageKind::Text { body } => Some(body),
            MessageKind::Button { text, .. } => Some(text),
            MessageKind::Interactive(
                InteractiveReply::ButtonReply { title, .. }
                | InteractiveReply::ListReply { title, .. },
            ) => Some(title),
            _ => None,
        }
    }
}

impl InteractiveReply {
    /// `interactive.type` (`button_reply`, `nfm_reply`, `call_permission_reply`...); empty
    /// when the sender left it out.
    pub fn reply_type(&self) -> &str {
        match self {
            InteractiveReply::ButtonReply { .. } => "button_reply",
            InteractiveReply::ListReply { .. } => "list_reply",
            InteractiveReply::NfmReply { .. } => "nfm_reply",
            InteractiveReply::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The title the user tapped, for button and list replies and any reply type not modelled
    /// here that carries one; `None` when blank or absent.
    pub fn title(&self) -> Option<&str> {
        let title = match self {
            InteractiveReply::ButtonReply { title, .. }
            | InteractiveReply::ListReply { title, .. } => Some(title.as_str()),
            InteractiveReply::NfmReply { .. } => None,
            InteractiveReply::Other(v) => v
                .get(self.reply_type())
                .and_then(|reply| reply.get("title"))
                .and_then(Value::as_str),
        };
        title.filter(|t| !t.trim().is_empty())
    }
}

/// The reacted message's id and the emoji (trimmed) of a reaction message object, borrowed
/// from it; `None` for a removal (an empty emoji) or when either is missing.
pub fn reaction_of(message: &Value) -> Option<(&str, &str)> {
    let reaction = message.get("reaction")?;
    let field = |key: &str| {
        reaction
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    Some((field("message_id")?, field("emoji")?.trim()))
}
