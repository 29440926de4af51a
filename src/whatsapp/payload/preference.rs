//! `user_preferences` changes: a customer stopped or resumed marketing messages in WhatsApp's
//! own interface (the business profile's "Stop"/"Resume" or an offer's opt-out).
//!
//! Meta's shape (webhooks reference, `user_preferences`):
//! `value.user_preferences[] = {wa_id, detail, category: "marketing_messages", value, timestamp}`
//! with `value` `stop` or `resume` (older senders also send `signup` for a sign-up link).

use super::lenient;
use serde_json::Value;

/// The `field` of changes that carry preference updates.
pub const USER_PREFERENCES_FIELD: &str = "user_preferences";

/// One `value.user_preferences[]` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreference {
    /// The customer's WhatsApp id; `None` when absent or empty.
    pub wa_id: Option<String>,
    /// The business-scoped user id, for customers who hide their number.
    pub user_id: Option<String>,
    /// `marketing_messages` today; kept as sent.
    pub category: String,
    pub value: PreferenceValue,
    /// Meta's human-readable description (`User requested to stop marketing messages`).
    pub detail: Option<String>,
    /// Seconds since the epoch; 0 when absent or unreadable.
    pub timestamp: i64,
}

/// What the customer chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceValue {
    Stop,
    Resume,
    /// Anything else (`signup`...), kept as sent.
    Other(String),
}

impl UserPreference {
    pub(super) fn list(value: &Value) -> Vec<UserPreference> {
        lenient::array(value, "user_preferences")
            .iter()
            .map(|item| {
                let raw = lenient::text(item, "value");
                UserPreference {
                    wa_id: lenient::string(item, "wa_id"),
                    user_id: lenient::string(item, "user_id"),
                    category: lenient::text(item, "category"),
                    value: match raw.trim().to_ascii_lowercase().as_str() {
                        "stop" => PreferenceValue::Stop,
                        "resume" => PreferenceValue::Resume,
                        _ => PreferenceValue::Other(raw),
                    },
                    detail: lenient::string(item, "detail"),
                    timestamp: lenient::int(item, "timestamp").unwrap_or(0),
                }
            })
            .collect()
    }

    /// Who it is about: the WhatsApp id, else the business-scoped user id.
    pub fn user(&self) -> Option<&str> {
        self.wa_id.as_deref().or(self.user_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_and_resume_are_read_and_other_values_kept_as_sent() {
        let value = json!({"user_preferences": [
            {"wa_id": "16505551234", "detail": "User requested to stop marketing messages",
             "category": "marketing_messages", "value": "stop", "timestamp": 1731705721},
            {"wa_id": "", "user_id": "US.1", "category": "marketing_messages", "value": "Resume",
             "timestamp": "1731705722"},
            {"wa_id": "1", "value": "signup"}
        ]});
        let list = UserPreference::list(&value);
        assert_eq!(list[0].value, PreferenceValue::Stop);
        assert_eq!(list[0].user(), Some("16505551234"));
        assert_eq!(list[0].timestamp, 1_731_705_721);
        assert_eq!(list[1].value, PreferenceValue::Resume);
        assert_eq!(list[1].user(), Some("US.1"));
        assert_eq!(list[1].timestamp, 1_731_705_722);
        assert_eq!(list[2].value, PreferenceValue::Other("signup".into()));
    }
}
