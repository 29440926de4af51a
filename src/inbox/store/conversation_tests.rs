//! Conversations on both backends: who has them (handoff), reactions, what operators read
//! (the list, a conversation's messages, the inbox report) and the re-queue of a failed turn.

use super::*;
use crate::inbox::LaneKey;

fn lane() -> LaneKey {
    LaneKey {
        phone_number_id: "PNID".into(),
        user: "15550001111".into(),
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn text(id: &str, body: &str) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(),
        display_phone_number: "1".into(),
        contact_name: Some("Ana".into()),
        kind: "text".into(),
        timestamp: now_secs(),
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"{body}"}}}}"#),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

fn reaction(id: &str, target: &str, emoji: &str, at: i64) -> NewInbound {
    NewInbound {
        kind: "reaction".into(),
        timestamp: at,
        raw: format!(
            r#"{{"id":"{id}","type":"reaction","reaction":{{"message_id":"{target}","emoji":"{emoji}"}}}}"#
        ),
        ..text(id, "")
    }
}

fn messages(list: Vec<NewInbound>) -> Batch {
    Batch {
        messages: list,
        ..Batch::default()
    }
}

/// A customer message answered by one sent part (Meta's id `wamid.out`); returns the turn.
async fn answered(store: &Store, id: &str) -> i64 {
    store.record(messages(vec![text(id, "hi")])).await.unwrap();
    let turn = store.claim_turn(lane()).await.unwrap().expect("a turn");
    store
        .save_reply(turn.id, vec!["Hello! How can I help?".into()])
        .await
        .unwrap();
    store
        .mark_part_sent(turn.id, 0, "wamid.out".into())
        .await
        .unwrap();
    store.finish_turn(turn.id, TurnOutcome::Done).await.unwrap();
    turn.id
}

on_both_backends! {
    async fn a_keyword_hands_the_conversation_over_once_and_what_follows_is_kept_for_the_person(db: Backing) {
        let store = db.open().await;
        let mut asked = text("k1", "human please");
        asked.state = InboundState::Skipped;
        asked.note = Some(ASKED_FOR_PERSON.into());
        let body = || Batch {
            messages: vec![asked.clone(), text("k2", "are you there?")],
            handoffs: vec![KeywordHandoff {
                lane: lane(),
                message_id: "k1".into(),
                notice: vec!["A person will answer".into()],
            }],
            ..Batch::default()
        };
        let outcome = store.record(body()).await.unwrap();
        assert_eq!(outcome.handed_over, vec![lane()]);
        assert_eq!(outcome.new_pending_messages, 0, "nothing for the agent");
        assert_eq!(store.holder(lane()).await.unwrap(), Holder::Human);
        let humans = store.human_conversations().await.unwrap();
        assert_eq!(humans.len(), 1);
        assert_eq!(humans[0].trigger.as_deref(), Some("keyword"));
        let notice: Vec<String> = store
            .pending_outbox()
            .await
            .unwrap()
            .into_iter()
            .map(|item| item.text)
            .collect();
        assert_eq!(notice, vec!["A person will answer".to_string()]);

        // Meta delivers the body again: no second handoff, no second notice.
        let again = store.record(body()).await.unwrap();
        assert!(again.handed_over.is_empty());
        assert_eq!(again.duplicates, 2);
        assert_eq!(store.pending_outbox().await.unwrap().len(), 1);

        // What the customer wrote to the person, for the memory at the release.
        let held = store.held_messages(lane(), 0, i64::MAX).await.unwrap();
        let held: Vec<&str> = held.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(held, vec!["human please", "are you there?"]);

        // An operator taking it again changes nothing; the release gives it back once.
        assert!(!store
            .hand_over(lane(), "operator", None, vec!["again".into()])
            .await
            .unwrap());
        assert!(store.release(lane(), "operator").await.unwrap());
        assert!(!store.release(lane(), "operator").await.unwrap());
        assert_eq!(store.holder(lane()).await.unwrap(), Holder::Agent);
        assert!(store.human_conversations().await.unwrap().is_empty());
    }

    async fn a_take_over_closes_what_waits_for_the_agent(db: Backing) {
        let store = db.open().await;
        store
            .record(messages(vec![text("w1", "one"), text("w2", "two")]))
            .await
            .unwrap();
        assert!(store
            .hand_over(lane(), "operator", Some("VIP".into()), vec!["notice".into()])
            .await
            .unwrap());
        assert!(store.claim_turn(lane()).await.unwrap().is_none(), "no turn for the agent");
        let report = store.inbox_snapshot(10, false).await.unwrap();
        assert_eq!(report.messages.get("skipped"), Some(&2));
        assert_eq!(
            report.skipped,
            vec![(CLOSED_AT_HANDOFF.to_string(), 2)],
            "the reason is shown"
        );
        let humans = store.human_conversations().await.unwrap();
        assert_eq!(humans[0].reason.as_deref(), Some("VIP"));
    }

    async fn a_reaction_to_our_message_is_kept_and_an_older_one_delivered_late_changes_nothing(db: Backing) {
        let store = db.open().await;
        answered(&store, "m1").await;
        assert_eq!(
            store.sent_message_text("wamid.out".into()).await.unwrap().as_deref(),
            Some("Hello! How can I help?")
        );
        assert_eq!(store.sent_message_text("wamid.other".into()).await.unwrap(), None);

        let t = now_secs();
        let liked = store
            .record(messages(vec![reaction("r1", "wamid.out", "👍", t)]))
            .await
            .unwrap();
        assert_eq!(liked.new_pending_messages, 1, "a reaction to the agent may be answered");
        let current = store.reactions(lane()).await.unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!((current[0].emoji.as_str(), current[0].to_agent), ("👍", true));

        // Removed (a newer empty emoji), then an older reaction arrives late: still removed.
        let removed = store
            .record(messages(vec![reaction("r2", "wamid.out", "", t + 10)]))
            .await
            .unwrap();
        assert_eq!(removed.new_skipped, 1);
        store
            .record(messages(vec![reaction("r0", "wamid.out", "❤️", t - 10)]))
            .await
            .unwrap();
        assert!(store.reactions(lane()).await.unwrap().is_empty());

        // A reaction to a message that is not ours is kept, never answered.
        let theirs = store
            .record(messages(vec![reaction("r3", "wamid.theirs", "😮", t + 20)]))
            .await
            .unwrap();
        assert_eq!(theirs.new_skipped, 1);
        let report = store.inbox_snapshot(10, false).await.unwrap();
        assert!(report
            .skipped
            .iter()
            .any(|(reason, n)| reason == REACTION_NOT_TO_AGENT && *n == 1));
    }

    async fn operators_see_the_conversation_in_both_directions_with_delivery_status(db: Backing) {
        let store = db.open().await;
        let turn = answered(&store, "m1").await;
        store
            .record(Batch {
                statuses: vec![StatusUpdate {
                    message_id: "wamid.out".into(),
                    recipient: Some(lane().user),
                    status: "delivered".into(),
                    rank: 2,
                    errors: None,
                    pricing: None,
                    callback_data: None,
                }],
                ..Batch::default()
            })
            .await
            .unwrap();
        let queued = store
            .queue_operator_reply(lane(), "Ana here".into(), vec!["Ana here".into()])
            .await
            .unwrap();
        assert!(queued.is_some());

        let list = store.conversations(false).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].lane, lane());
        assert_eq!(list[0].contact_name.as_deref(), Some("Ana"));
        assert_eq!(list[0].holder, Holder::Agent);
        assert!(!list[0].opted_out);
        assert!(store.conversations(true).await.unwrap().is_empty(), "nobody has it");

        let shown = store.conversation_messages(lane()).await.unwrap().expect("known");
        let seen: Vec<(bool, &str, &str, &str)> = shown
            .iter()
            .map(|m| (m.inbound, m.author.as_str(), m.text.as_str(), m.status.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (true, "customer", "hi", "done"),
                (false, "agent", "Hello! How can I help?", "delivered"),
                (false, "operator", "Ana here", "pending"),
            ]
        );
        assert_eq!(shown[1].message_id.as_deref(), Some("wamid.out"));
        let unknown = LaneKey {
            phone_number_id: "PNID".into(),
            user: "nobody".into(),
        };
        assert!(store.conversation_messages(unknown.clone()).await.unwrap().is_none());

        let ts = store.last_customer_timestamp(lane()).await.unwrap().expect("a timestamp");
        assert!((now_secs() - ts).abs() < 60);
        assert_eq!(store.last_customer_at(lane()).await.unwrap(), Some(ts * 1000));
        assert_eq!(store.last_customer_at(unknown).await.unwrap(), None);
        let _ = turn;
    }

    async fn a_failed_turn_is_reported_then_requeued_once_and_dead_letters_read_back(db: Backing) {
        let store = db.open().await;
        store.record(messages(vec![text("f1", "hello")])).await.unwrap();
        let turn = store.claim_turn(lane()).await.unwrap().expect("a turn");
        store
            .finish_turn(turn.id, TurnOutcome::Failed("no model answered".into()))
            .await
            .unwrap();
        store
            .record(Batch {
                dead_letters: vec![("not a message".into(), r#"{"odd":true}"#.into())],
                ..Batch::default()
            })
            .await
            .unwrap();

        let report = store.inbox_snapshot(10, false).await.unwrap();
        assert_eq!(report.messages.get("failed"), Some(&1));
        assert_eq!(report.turns.get("failed"), Some(&1));
        assert_eq!(report.dead_letters, 1);
        assert_eq!(report.turns_list.len(), 1);
        assert_eq!(report.turns_list[0].id, turn.id);
        assert_eq!(report.turns_list[0].error.as_deref(), Some("no model answered"));
        let letter = &report.dead_letter_list[0];
        let read = store.dead_letter(letter.id).await.unwrap().expect("kept");
        assert_eq!((read.reason.as_str(), read.body.as_str()), ("not a message", r#"{"odd":true}"#));
        assert!(store.dead_letter(letter.id + 1000).await.unwrap().is_none());

        assert_eq!(
            store.requeue_turn(turn.id, false).await.unwrap(),
            Requeue::Done { messages: 1, parts_already_sent: 0 }
        );
        assert_eq!(
            store.requeue_turn(turn.id, false).await.unwrap(),
            Requeue::NotFailed("requeued".into())
        );
        assert_eq!(store.requeue_turn(turn.id + 1000, false).await.unwrap(), Requeue::NotFound);
        let after = store.inbox_snapshot(10, false).await.unwrap();
        assert_eq!(after.messages.get("pending"), Some(&1));
        assert_eq!(after.waiting.len(), 1);
        assert!(after.turns_list.is_empty(), "no running or failed turn left");
        let again = store.claim_turn(lane()).await.unwrap().expect("answered again");
        assert_eq!(again.messages.len(), 1);
    }

    async fn a_turn_partly_answered_is_requeued_only_with_force(db: Backing) {
        let store = db.open().await;
        store.record(messages(vec![text("p1", "hello")])).await.unwrap();
        let turn = store.claim_turn(lane()).await.unwrap().expect("a turn");
        store.save_reply(turn.id, vec!["one".into(), "two".into()]).await.unwrap();
        store.mark_part_sent(turn.id, 0, "wamid.1".into()).await.unwrap();
        store
            .finish_turn(turn.id, TurnOutcome::Failed("Graph down".into()))
            .await
            .unwrap();
        assert_eq!(
            store.requeue_turn(turn.id, false).await.unwrap(),
            Requeue::PartlyAnswered { sent: 1, total: 2 }
        );
        assert_eq!(
            store.requeue_turn(turn.id, true).await.unwrap(),
            Requeue::Done { messages: 1, parts_already_sent: 1 }
        );
    }

    async fn held_parts_wait_for_the_window_and_one_template_reopens_each_silence(db: Backing) {
        let store = db.open().await;
        store.record(messages(vec![text("h1", "hi")])).await.unwrap();
        let turn_id = store.claim_turn(lane()).await.unwrap().expect("a turn").id;
        store.save_reply(turn_id, vec!["one".into(), "two".into()]).await.unwrap();
        store.mark_part_sent(turn_id, 0, "wamid.1".into()).await.unwrap();
        let template = crate::whatsapp::graph::OutgoingMessage::Template {
            name: "hello_again".into(),
            language: "en_US".into(),
            components: Vec::new(),
        };
        let first = store
            .hold_for_window(lane(), turn_id, 1, Some(template.clone()), 42_000)
            .await
            .unwrap();
        assert!(first.is_some(), "the template is queued");
        let again = store
            .hold_for_window(lane(), turn_id, 1, Some(template.clone()), 42_000)
            .await
            .unwrap();
        assert_eq!(again, None, "one template per silence");
        assert_eq!(store.held_turns(lane()).await.unwrap(), vec![turn_id]);
        let parts = store.load_reply(turn_id).await.unwrap().unwrap();
        assert!(parts[0].held_since.is_none(), "an accepted part is never held");
        assert!(parts[1].held_since.is_some());
        let outbox = store.pending_outbox().await.unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].parts[0].message, template);
        store.finish_outbox(outbox[0].id, None, None).await.unwrap();
        assert!(store.pending_outbox().await.unwrap().is_empty(), "sent");
        let later = store
            .hold_for_window(lane(), turn_id, 1, Some(template), 99_000)
            .await
            .unwrap();
        assert!(later.is_some(), "a later silence gets its own template");
    }
}
