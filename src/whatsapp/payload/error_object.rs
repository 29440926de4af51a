//! The error objects Meta attaches to a change, a message or a status.

use super::lenient;
use serde_json::Value;

/// One error as Meta reports it (`{code, title, message, error_data: {details}, href}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookError {
    /// Meta's numeric error code (e.g. 131047: outside the 24-hour window).
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`, or a top-level `details` as some senders write it.
    pub error_data_details: Option<String>,
    /// A link to Meta's error-code documentation.
    pub href: Option<String>,
}

impl WebhookError {
    /// Reads one error object; anything missing is `None`.
    pub(crate) fn from_value(v: &Value) -> Self {
        WebhookError {
            code: lenient::int(v, "code"),
            title: lenient::string(v, "title"),
            message: lenient::string(v, "message"),
            error_data_details: lenient::nested_string(v, "error_data", "details")
                .or_else(|| lenient::string(v, "details")),
            href: lenient::string(v, "href"),
        }
    }

    /// Every error in `v[key]`, in order; an empty list when there are none.
    pub(crate) fn list(v: &Value, key: &str) -> Vec<Self> {
        lenient::array(v, key)
            .iter()
            .map(Self::from_value)
            .collect()
    }
}
