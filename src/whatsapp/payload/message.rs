//! One inbound message: who sent it, when, and what it carries.

use super::error_object::WebhookError;
use super::kind::{parse_kind, type_name_of, MessageKind};
use super::lenient;
use serde_json::Value;

/// An inbound message from `value.messages[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Meta's message id (`wamid....`), the dedupe key. Empty only when the sender left it out:
    /// such a message cannot be deduplicated and should be dead-lettered, not answered.
    pub id: String,
    /// The user's WhatsApp id (phone number); `None` when absent or empty.
    pub from: Option<String>,
    /// The business-scoped user id that replaces `from` for users who hide their number.
    pub from_user_id: Option<String>,
    /// Seconds since the epoch; 0 when absent or unreadable.
    pub timestamp: i64,
    /// Meta's `type` as sent (or inferred from the payload key when `type` is missing), kept
    /// even for types [`MessageKind`] does not model.
    pub kind_name: String,
    /// The typed content.
    pub kind: MessageKind,
    /// Set when the message quotes another, was forwarded, or asks about a product.
    pub context: Option<MessageContext>,
    /// Click-to-WhatsApp ad or post that led the user here, kept as sent.
    pub referral: Option<Value>,
    /// Errors Meta attached to the message (for `unsupported` and `unknown` types).
    pub errors: Vec<WebhookError>,
    /// The whole message object as received, for storage and re-parsing.
    pub raw: Value,
}

/// `message.context`: what the message refers to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageContext {
    /// Who sent the quoted message (the business number for replies to our messages).
    pub from: Option<String>,
    /// The quoted message's id.
    pub id: Option<String>,
    pub forwarded: bool,
    /// Forwarded more than five times.
    pub frequently_forwarded: bool,
    /// The catalog product the user asked about.
    pub referred_product: Option<ReferredProduct>,
}

/// `context.referred_product`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferredProduct {
    pub catalog_id: Option<String>,
    pub product_retailer_id: Option<String>,
}

impl Message {
    /// Reads one message object (as stored in `raw`). Never fails: whatever is missing is
    /// empty, and an unrecognised `type` becomes [`MessageKind::Unknown`].
    pub fn from_value(v: &Value) -> Message {
        Message::from_owned(v.clone())
    }

    /// Like [`Message::from_value`] but keeps `v` as `raw` without copying it.
    pub(crate) fn from_owned(v: Value) -> Message {
        let kind_name = type_name_of(&v);
        Message {
            id: lenient::text(&v, "id"),
            from: lenient::string(&v, "from"),
            from_user_id: lenient::string(&v, "from_user_id"),
            timestamp: lenient::int(&v, "timestamp").unwrap_or(0),
            kind: parse_kind(&v, &kind_name),
            kind_name,
            context: v
                .get("context")
                .filter(|c| c.is_object())
                .map(MessageContext::from_value),
            referral: v.get("referral").filter(|r| !r.is_null()).cloned(),
            errors: WebhookError::list(&v, "errors"),
            raw: v,
        }
    }

    /// Who sent it: `from` when non-empty, else the business-scoped `from_user_id`.
    pub fn sender(&self) -> Option<&str> {
        self.from.as_deref().or(self.from_user_id.as_deref())
    }
}

impl MessageContext {
    fn from_value(v: &Value) -> Self {
        MessageContext {
            from: lenient::string(v, "from"),
            id: lenient::string(v, "id"),
            forwarded: lenient::flag(v, "forwarded"),
            frequently_forwarded: lenient::flag(v, "frequently_forwarded"),
            referred_product: v
                .get("referred_product")
                .filter(|p| p.is_object())
                .map(|p| ReferredProduct {
                    catalog_id: lenient::string(p, "catalog_id"),
                    product_retailer_id: lenient::string(p, "product_retailer_id"),
                }),
        }
    }
}
