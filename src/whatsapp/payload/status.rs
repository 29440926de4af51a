//! Delivery statuses of messages the business sent: sent, delivered, read, played, failed.

use super::error_object::WebhookError;
use super::lenient;
use serde_json::Value;

/// One entry of `value.statuses[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The id of the message this status is about (the `wamid` the send call returned).
    pub id: String,
    pub status: StatusKind,
    /// The user's WhatsApp id; `None` when absent or empty.
    pub recipient_id: Option<String>,
    /// The business-scoped user id of the recipient.
    pub recipient_user_id: Option<String>,
    /// Seconds since the epoch; 0 when absent or unreadable.
    pub timestamp: i64,
    /// Why a `failed` message failed.
    pub errors: Vec<WebhookError>,
    /// What Meta charges for the conversation, when it says.
    pub pricing: Option<Pricing>,
    /// The conversation object (id, expiration, origin), kept as sent.
    pub conversation: Option<Value>,
    /// `biz_opaque_callback_data`: the text the business attached to the send, echoed back
    /// (wagate names the reply part in it); `None` when absent or empty.
    pub callback_data: Option<String>,
    /// The whole status object as received.
    pub raw: Value,
}

/// The delivery state Meta reports. Statuses arrive out of order: compare with [`StatusKind::rank`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    /// A voice message was played.
    Played,
    /// Not delivered; see `Status::errors`. Terminal.
    Failed,
    /// The message was deleted. Terminal.
    Deleted,
    /// Any other value, kept as sent.
    Other(String),
}

/// `status.pricing`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pricing {
    pub billable: Option<bool>,
    /// `CBP` (conversation-based) or `PMP` (per message).
    pub pricing_model: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service`...
    pub category: Option<String>,
    /// `pricing.type` (`regular`, `free_customer_service`...).
    pub pricing_type: Option<String>,
}

impl StatusKind {
    /// Reads Meta's `status` string; case does not matter.
    pub fn parse(s: &str) -> StatusKind {
        const NAMED: [(&str, StatusKind); 6] = [
            ("sent", StatusKind::Sent),
            ("delivered", StatusKind::Delivered),
            ("read", StatusKind::Read),
            ("played", StatusKind::Played),
            ("failed", StatusKind::Failed),
            ("deleted", StatusKind::Deleted),
        ];
        NAMED
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map_or_else(|| StatusKind::Other(s.to_owned()), |(_, kind)| kind)
    }

    /// Position in the delivery order, so a late `delivered` never overwrites `read`:
    /// unknown 0 < sent 1 < delivered 2 < read 3 < played 4 < failed/deleted 5 (terminal).
    pub fn rank(&self) -> u8 {
        match self {
            StatusKind::Other(_) => 0,
            StatusKind::Sent => 1,
            StatusKind::Delivered => 2,
            StatusKind::Read => 3,
            StatusKind::Played => 4,
            StatusKind::Failed | StatusKind::Deleted => 5,
        }
    }

    /// No later status can follow this one.
    pub fn is_terminal(&self) -> bool {
        matches!(self, StatusKind::Failed | StatusKind::Deleted)
    }

    /// The lowercase name as Meta spells it (the original text for `Other`).
    pub fn as_str(&self) -> &str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Played => "played",
            StatusKind::Failed => "failed",
            StatusKind::Deleted => "deleted",
            StatusKind::Other(s) => s,
        }
    }
}

impl Status {
    /// Reads one status object; never fails.
    pub(crate) fn from_owned(v: Value) -> Status {
        Status {
            id: lenient::text(&v, "id"),
            status: StatusKind::parse(&lenient::text(&v, "status")),
            recipient_id: lenient::string(&v, "recipient_id"),
            recipient_user_id: lenient::string(&v, "recipient_user_id"),
            timestamp: lenient::int(&v, "timestamp").unwrap_or(0),
            errors: WebhookError::list(&v, "errors"),
            pricing: v
                .get("pricing")
                .filter(|p| p.is_object())
                .map(Pricing::from_value),
            conversation: v.get("conversation").filter(|c| !c.is_null()).cloned(),
            callback_data: lenient::string(&v, "biz_opaque_callback_data"),
            raw: v,
        }
    }
}

impl Pricing {
    fn from_value(v: &Value) -> Self {
        Pricing {
            billable: lenient::optional_flag(v, "billable"),
            pricing_model: lenient::string(v, "pricing_model"),
            category: lenient::string(v, "category"),
            pricing_type: lenient::string(v, "type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_delivered_ranks_below_read_and_failed_ranks_above_everything() {
        let order = ["sent", "delivered", "read", "played", "failed"].map(StatusKind::parse);
        for pair in order.windows(2) {
            assert!(
                pair[0].rank() < pair[1].rank(),
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
        }
        assert!(StatusKind::parse("failed").is_terminal());
        assert!(!StatusKind::parse("read").is_terminal());
        assert_eq!(StatusKind::parse("RINGING").rank(), 0);
    }

    #[test]
    fn the_callback_data_of_the_send_is_read_back() {
        let status = Status::from_owned(serde_json::json!({
            "id": "wamid.X", "status": "sent", "biz_opaque_callback_data": "wagate:ab:1:0"
        }));
        assert_eq!(status.callback_data.as_deref(), Some("wagate:ab:1:0"));
        let without = Status::from_owned(serde_json::json!({"id": "wamid.X", "status": "sent"}));
        assert_eq!(without.callback_data, None);
    }

    #[test]
    fn status_names_are_read_whatever_their_case_and_unknown_ones_are_kept() {
        assert_eq!(StatusKind::parse("DELIVERED"), StatusKind::Delivered);
        assert_eq!(StatusKind::parse("deleted"), StatusKind::Deleted);
        assert_eq!(StatusKind::parse("3"), StatusKind::Other("3".to_owned()));
        assert_eq!(StatusKind::parse("RINGING").as_str(), "RINGING");
        assert_eq!(StatusKind::Played.as_str(), "played");
    }
}
