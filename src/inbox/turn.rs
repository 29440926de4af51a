//! What the dispatcher hands to whoever answers a conversation: a turn.

use serde_json::Value as Json;

/// One conversation: the business number a user wrote to, and the user. Messages of one lane
/// are answered strictly in arrival order; different lanes run in parallel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneKey {
    /// `metadata.phone_number_id` of the change the message arrived in; replies go out from it.
    pub phone_number_id: String,
    /// The user: `from` (wa_id) when present, else the business-scoped `from_user_id`.
    pub user: String,
}

/// An inbound message as recorded in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    /// Arrival order across the whole inbox (SQLite rowid): the order messages are answered in.
    pub seq: i64,
    /// Meta's message id (`wamid....`), the dedupe key.
    pub message_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub user: String,
    /// `contacts[].profile.name` of the sender, matched by wa_id / user_id.
    pub contact_name: Option<String>,
    /// Meta's `type` (`text`, `image`, ...), kept as sent so unknown types survive.
    pub kind: String,
    /// Meta's timestamp (seconds since the epoch), 0 when absent.
    pub timestamp: i64,
    /// The message object exactly as Meta sent it, for the agent to turn into model input.
    pub raw: Json,
}

/// Everything one lane had pending when it became free, answered together.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Stable across a crash: a resumed turn keeps its id (and its messages), so parts of a
    /// reply already accepted by Meta are not sent again.
    pub id: i64,
    pub lane: LaneKey,
    /// In arrival order; never empty.
    pub messages: Vec<InboundRecord>,
    /// How many times this turn was started before (0 on the first run; >0 after a crash).
    pub attempt: u32,
}

impl Turn {
    /// The message a reply quotes and the read receipt points at.
    pub fn last_message(&self) -> &InboundRecord {
        self.messages.last().expect("a turn is never empty")
    }
}
