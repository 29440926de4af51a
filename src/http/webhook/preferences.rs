//! Meta's `user_preferences` changes as the store records them: opt-outs and resumes.

use crate::inbox::store::{OptChange, OptSource};
use crate::inbox::{Batch, LaneKey};
use crate::whatsapp::payload::{Change, PreferenceValue};

/// A `user_preferences` change: each marketing stop or resume becomes an opt-out or a resume
/// of that customer's conversation with the business number (applied in the commit; Meta's
/// own stop sends the customer nothing). Other values (`signup`) change nothing.
pub(super) fn record(change: &Change, batch: &mut Batch, unhandled: &mut Vec<String>) {
    let Some(phone_number_id) = change.phone_number_id() else {
        unhandled.push("user_preferences without metadata.phone_number_id".into());
        return;
    };
    for preference in &change.user_preferences {
        let opt_out = match &preference.value {
            PreferenceValue::Stop => true,
            PreferenceValue::Resume => false,
            PreferenceValue::Other(value) => {
                tracing::info!(value = %value, category = %preference.category, "user_preferences notification with nothing to do");
                continue;
            }
        };
        let Some(user) = preference.user() else {
            unhandled.push("user_preferences entry without wa_id".into());
            continue;
        };
        batch.opt_changes.push(OptChange {
            lane: LaneKey {
                phone_number_id: phone_number_id.to_owned(),
                user: user.to_owned(),
            },
            message_id: None,
            opt_out,
            source: OptSource::UserPreferences,
            timestamp: preference.timestamp,
            reply: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::payload;
    use serde_json::json;

    fn change(value: serde_json::Value) -> Change {
        let body = json!({"entry": [{"id": "W", "changes": [{"field": "user_preferences",
                                                             "value": value}]}]});
        payload::parse(body.to_string().as_bytes())
            .expect("parses")
            .changes
            .remove(0)
    }

    #[test]
    fn a_stop_and_a_resume_become_opt_changes_of_that_customer_and_number() {
        let value = json!({"metadata": {"phone_number_id": "PN"}, "user_preferences": [
            {"wa_id": "u1", "category": "marketing_messages", "value": "stop", "timestamp": 5},
            {"wa_id": "u2", "category": "marketing_messages", "value": "resume", "timestamp": 6},
            {"wa_id": "u3", "category": "marketing_messages", "value": "signup", "timestamp": 7}
        ]});
        let (mut batch, mut unhandled) = (Batch::default(), Vec::new());
        record(&change(value), &mut batch, &mut unhandled);
        assert!(unhandled.is_empty(), "{unhandled:?}");
        let seen: Vec<(&str, &str, bool, i64)> = batch
            .opt_changes
            .iter()
            .map(|c| {
                (
                    c.lane.phone_number_id.as_str(),
                    c.lane.user.as_str(),
                    c.opt_out,
                    c.timestamp,
                )
            })
            .collect();
        assert_eq!(seen, vec![("PN", "u1", true, 5), ("PN", "u2", false, 6)]);
        assert!(batch.opt_changes.iter().all(|c| c.reply.is_empty()
            && c.message_id.is_none()
            && c.source == OptSource::UserPreferences));
    }

    #[test]
    fn a_notification_that_names_no_business_number_is_kept_as_a_dead_letter() {
        let value = json!({"user_preferences": [{"wa_id": "u1", "value": "stop"}]});
        let (mut batch, mut unhandled) = (Batch::default(), Vec::new());
        record(&change(value), &mut batch, &mut unhandled);
        assert!(batch.opt_changes.is_empty());
        assert_eq!(unhandled.len(), 1);
    }
}
