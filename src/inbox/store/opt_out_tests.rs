//! Opt-out at intake, on both backends: what one body with several messages does.

use super::*;
use crate::inbox::LaneKey;

fn lane() -> LaneKey {
    LaneKey {
        phone_number_id: "PNID".into(),
        user: "u1".into(),
    }
}

fn message(id: &str, at: i64) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(),
        display_phone_number: "1".into(),
        contact_name: None,
        kind: "text".into(),
        timestamp: at,
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"{id}"}}}}"#),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

fn change(id: &str, opt_out: bool, at: i64) -> OptChange {
    OptChange {
        lane: lane(),
        message_id: Some(id.into()),
        opt_out,
        source: OptSource::Keyword,
        timestamp: at,
        reply: if opt_out {
            vec!["bye".into()]
        } else {
            Vec::new()
        },
    }
}

on_both_backends! {
    async fn in_one_body_only_what_follows_a_resume_is_answered_and_the_confirmation_is_queued_once(db: Backing) {
        let store = db.open().await;
        let body = || Batch {
            messages: vec![
                message("before", 10),
                message("STOP", 11),
                message("while", 12),
                message("START", 13),
                message("after", 14),
            ],
            opt_changes: vec![change("STOP", true, 11), change("START", false, 13)],
            ..Batch::default()
        };
        let outcome = store.record(body()).await.unwrap();
        // before, STOP and while are kept unanswered; START and after wait for the agent.
        assert_eq!(outcome.new_skipped, 3);
        assert_eq!(outcome.new_pending_messages, 2);
        assert_eq!(outcome.resumed, vec![lane()]);
        assert!(outcome.opted_out.is_empty(), "resumed in the same body");
        assert!(!store.is_opted_out(lane()).await.unwrap());
        let queued = store.pending_outbox().await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].text, "bye");

        // The same body again (Meta redelivers it): nothing changes, nothing more is queued.
        let again = store.record(body()).await.unwrap();
        assert_eq!(again.duplicates, 5);
        assert!(again.opted_out.is_empty() && again.resumed.is_empty());
        assert_eq!(store.pending_outbox().await.unwrap().len(), 1);
    }

    async fn an_older_notification_delivered_late_does_not_undo_a_newer_choice(db: Backing) {
        let store = db.open().await;
        let notification = |opt_out: bool, at: i64| Batch {
            opt_changes: vec![OptChange {
                message_id: None,
                source: OptSource::UserPreferences,
                reply: Vec::new(),
                ..change("", opt_out, at)
            }],
            ..Batch::default()
        };
        let stop = store.record(notification(true, 100)).await.unwrap();
        assert_eq!(stop.opted_out, vec![(lane(), 100)]);
        let resume = store.record(notification(false, 200)).await.unwrap();
        assert_eq!(resume.resumed, vec![lane()]);
        // The stop of time 100 again, late: ignored.
        let late = store.record(notification(true, 100)).await.unwrap();
        assert!(late.opted_out.is_empty());
        assert!(!store.is_opted_out(lane()).await.unwrap());
        assert!(
            store.pending_outbox().await.unwrap().is_empty(),
            "Meta's stop sends nothing"
        );
    }

    async fn an_operator_reply_queued_after_a_stop_is_refused_in_the_same_commit(db: Backing) {
        // The operator's check of the conversation and the queueing are two steps; a STOP that
        // commits between them must still win: the queueing itself refuses.
        let store = db.open().await;
        store
            .record(Batch {
                messages: vec![message("hello", 10)],
                ..Batch::default()
            })
            .await
            .unwrap();
        let queued = store
            .queue_operator_reply(lane(), "Hi, Ana here.".into(), vec!["Hi, Ana here.".into()])
            .await
            .unwrap();
        assert!(queued.is_some(), "before the STOP a reply is queued");

        store
            .record(Batch {
                messages: vec![message("STOP", 11)],
                opt_changes: vec![change("STOP", true, 11)],
                ..Batch::default()
            })
            .await
            .unwrap();
        let refused = store
            .queue_operator_reply(
                lane(),
                "One more thing".into(),
                vec!["One more thing".into()],
            )
            .await
            .unwrap();
        assert_eq!(refused, None);
        let texts: Vec<String> = store
            .pending_outbox()
            .await
            .unwrap()
            .into_iter()
            .map(|item| item.text)
            .collect();
        assert!(!texts.contains(&"One more thing".to_string()), "{texts:?}");
    }
}
