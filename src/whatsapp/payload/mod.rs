//! Meta's webhook body, read tolerantly and completely.
//!
//! A body holds `entry[] × changes[] × (messages[] | statuses[] | errors[])`; every one of them is
//! read, not just the first. Only a body that is not a JSON object is an error: a change of an
//! unknown `field`, a message of an unknown `type` or with missing fields is kept in a raw form,
//! so the caller can record it and answer Meta `200` instead of a retry storm.
//!
//! The bytes are parsed into a `serde_json::Value` once and walked with the forgiving readers in
//! `lenient`, since senders disagree on whether numbers are numbers or strings.

mod error_object;
mod kind;
mod lenient;
mod message;
mod preference;
mod status;

pub use error_object::WebhookError;
pub use kind::{
    reaction_of, InteractiveReply, Location, Media, MediaKind, MessageKind, Order, ProductItem,
    Scalar, SharedContact, SystemEvent,
};
pub use message::{Message, MessageContext, ReferredProduct};
pub use preference::{PreferenceValue, UserPreference, USER_PREFERENCES_FIELD};
pub use status::{Pricing, Status, StatusKind};

use serde_json::Value;

/// The `field` of changes that carry messages and statuses.
pub const MESSAGES_FIELD: &str = "messages";

/// Why a body could not be read at all (the HTTP layer answers `400`).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not JSON. The source names the position, never the content.
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// Valid JSON, but not an object (an array, a number, a string...).
    #[error("body is JSON but not an object")]
    NotAnObject,
}

/// A whole webhook body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Webhook {
    /// `object`, normally `whatsapp_business_account`.
    pub object: Option<String>,
    /// Every change of every entry, in the order received.
    pub changes: Vec<Change>,
}

/// One `entry[].changes[]` item, with its entry's id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    /// `entry[].id`: the WhatsApp Business Account id.
    pub entry_id: Option<String>,
    /// `field` as sent (`messages`, `account_update`, `calls`...); empty when absent.
    pub field: String,
    /// Which business number the change is for; route by `metadata.phone_number_id`.
    pub metadata: Option<Metadata>,
    /// The users the messages are from (their profile names).
    pub contacts: Vec<Contact>,
    pub messages: Vec<Message>,
    pub statuses: Vec<Status>,
    /// Errors about the change as a whole (e.g. a payload Meta could not build).
    pub errors: Vec<WebhookError>,
    /// A customer's marketing stop/resume (`user_preferences` changes only).
    pub user_preferences: Vec<UserPreference>,
    /// The whole `value` for changes that are not about messages (account, template, call
    /// updates), so nothing is lost; `null` for `messages` changes, which are read above.
    pub raw_value: Value,
}

/// `value.metadata`: the business number a change concerns. Empty strings when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub phone_number_id: String,
    pub display_phone_number: String,
}

/// `value.contacts[]`: a user's identity and profile name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub wa_id: Option<String>,
    /// The business-scoped user id.
    pub user_id: Option<String>,
    /// `profile.name`: the name the user set in WhatsApp.
    pub name: Option<String>,
}

/// Reads a webhook body. Fails only when it is not JSON or not a JSON object.
pub fn parse(body: &[u8]) -> Result<Webhook, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    parse_value(value)
}

/// Reads an already parsed body. Fails only when it is not a JSON object.
pub fn parse_value(mut value: Value) -> Result<Webhook, PayloadError> {
    let body = value.as_object_mut().ok_or(PayloadError::NotAnObject)?;
    let object = body
        .get("object")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut changes = Vec::new();
    if let Some(Value::Array(entries)) = body.remove("entry") {
        for mut entry in entries {
            let entry_id = lenient::string(&entry, "id");
            let Some(Value::Array(entry_changes)) = entry.get_mut("changes").map(Value::take)
            else {
                continue;
            };
            changes.extend(
                entry_changes
                    .into_iter()
                    .map(|change| Change::from_owned(entry_id.clone(), change)),
            );
        }
    }
    Ok(Webhook { object, changes })
}

impl Webhook {
    /// Every inbound message with the change it arrived in, across all entries and changes.
    pub fn messages(&self) -> impl Iterator<Item = (&Change, &Message)> {
        self.changes
            .iter()
            .flat_map(|change| change.messages.iter().map(move |m| (change, m)))
    }

    /// Every status with the change it arrived in, across all entries and changes.
    pub fn statuses(&self) -> impl Iterator<Item = (&Change, &Status)> {
        self.changes
            .iter()
            .flat_map(|change| change.statuses.iter().map(move |s| (change, s)))
    }
}

impl Change {
    fn from_owned(entry_id: Option<String>, mut change: Value) -> Change {
        let field = lenient::text(&change, "field");
        let mut value = change.get_mut("value").map(Value::take).unwrap_or_default();
        let metadata = value
            .get("metadata")
            .filter(|m| m.is_object())
            .map(|m| Metadata {
                phone_number_id: lenient::text(m, "phone_number_id"),
                display_phone_number: lenient::text(m, "display_phone_number"),
            });
        let contacts: Vec<Contact> = lenient::array(&value, "contacts")
            .iter()
            .map(Contact::from_value)
            .collect();
        let errors = WebhookError::list(&value, "errors");
        let user_preferences = if field == USER_PREFERENCES_FIELD {
            UserPreference::list(&value)
        } else {
            Vec::new()
        };
        // Typed lists only for message changes (or a change that forgot its field): a `calls`
        // change also has `statuses`, but those are about calls, not messages we sent.
        let is_messages = field == MESSAGES_FIELD || field.is_empty();
        let (messages, statuses, raw_value) = if is_messages {
            let messages = take_array(&mut value, "messages")
                .map(Message::from_owned)
                .map(|m| with_sole_contact_as_sender(m, &contacts))
                .collect();
            let statuses = take_array(&mut value, "statuses")
                .map(Status::from_owned)
                .collect();
            (messages, statuses, Value::Null)
        } else {
            (Vec::new(), Vec::new(), value)
        };
        Change {
            entry_id,
            field,
            metadata,
            contacts,
            messages,
            statuses,
            errors,
            user_preferences,
            raw_value,
        }
    }

    /// The business number id (`metadata.phone_number_id`), when present and non-empty.
    pub fn phone_number_id(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .map(|m| m.phone_number_id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The profile name of the sender of `message`, matched by `wa_id == from` first, then by
    /// `user_id == from_user_id`; never by position, since the lists need not be in step.
    pub fn contact_name_for(&self, message: &Message) -> Option<&str> {
        let by_wa_id = message.from.as_deref().and_then(|from| {
            self.contacts
                .iter()
                .find(|c| c.wa_id.as_deref() == Some(from))
        });
        let contact = by_wa_id.or_else(|| {
            let user_id = message.from_user_id.as_deref()?;
            self.contacts
                .iter()
                .find(|c| c.user_id.as_deref() == Some(user_id))
        })?;
        contact.name.as_deref()
    }
}

impl Contact {
    fn from_value(v: &Value) -> Contact {
        Contact {
            wa_id: lenient::string(v, "wa_id"),
            user_id: lenient::string(v, "user_id"),
            name: lenient::nested_string(v, "profile", "name"),
        }
    }
}

/// Moves the items of `v[key]` out (no copy); nothing when it is absent or not an array.
fn take_array(v: &mut Value, key: &str) -> impl Iterator<Item = Value> {
    let items = match v.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    items.into_iter()
}

/// A message that names no sender at all takes the identity of the change's only contact:
/// `contacts[]` lists the senders of the change, so with one contact there is no ambiguity.
/// With several contacts nothing is guessed.
fn with_sole_contact_as_sender(mut message: Message, contacts: &[Contact]) -> Message {
    if message.sender().is_none() {
        if let [only] = contacts {
            message.from = only.wa_id.clone();
            message.from_user_id = only.user_id.clone();
        }
    }
    message
}

#[cfg(test)]
mod tests;
