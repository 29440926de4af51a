//! Answered turns closed together (`close_batch.rs`, `wagate_finish_answered`): each turn is
//! fenced on its own, a conversation with messages waiting gets its next turn, and the
//! statement reads the closed conversations' rows, not every waiting one.

use super::testdb::TestDb;
use crate::inbox::store::both_backends::{batch, lane, message};
use crate::inbox::store::{Store, StoreError, TurnOutcome};

/// One message each for `users`, claimed and answered with one part Meta accepted (its
/// `sent` mark waiting for the close): the turn ids, in the order of `users`.
async fn answered_turns(store: &Store, users: &[String]) -> Vec<i64> {
    let messages = users
        .iter()
        .map(|user| message(&format!("in.{user}"), user))
        .collect();
    store.record(batch(messages)).await.unwrap();
    let mut turns = Vec::new();
    for user in users {
        let turn = store.claim_turn(lane(user)).await.unwrap().expect("a turn");
        store.save_reply(turn.id, vec!["ok".into()]).await.unwrap();
        store
            .mark_last_part_sent(turn.id, 0, format!("wamid.{user}"))
            .await
            .unwrap();
        turns.push(turn.id);
    }
    turns
}

#[tokio::test]
async fn turns_closing_at_once_share_a_statement_and_one_taken_over_does_not_stop_the_others() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    let heir = db.open_store().await;
    let users: Vec<String> = (0..20).map(|n| format!("u{n:02}")).collect();
    let turns = answered_turns(&store, &users).await;
    // The first replica stalls past its leases; the second takes u00 over (and resumes its
    // turn), the others stay the first replica's.
    db.expire_leases().await;
    let resumed = heir
        .claim_turn(lane("u00"))
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!(
        resumed.id, turns[0],
        "the heir resumes the interrupted turn"
    );

    let before = store.postgres().inner().closes.statements();
    let closes = turns
        .iter()
        .map(|&turn| store.finish_turn(turn, TurnOutcome::Done));
    let results = futures::future::join_all(closes).await;
    let statements = store.postgres().inner().closes.statements() - before;

    assert!(
        matches!(results[0], Err(StoreError::LeaseLost { turn_id }) if turn_id == turns[0]),
        "the turn taken over reports its lease lost: {:?}",
        results[0]
    );
    for (user, result) in users.iter().zip(&results).skip(1) {
        assert!(result.is_ok(), "{user}'s turn closes: {result:?}");
    }
    assert!(
        statements < turns.len(),
        "{} closes at once took {statements} statements",
        turns.len()
    );
    assert_eq!(
        db.query_text(
            "SELECT string_agg(customer || '=' || state, ',' ORDER BY customer) FROM inbound"
        )
        .await,
        std::iter::once("u00=taken".to_owned())
            .chain(users[1..].iter().map(|u| format!("{u}=done")))
            .collect::<Vec<_>>()
            .join(","),
        "each closed turn's message is done; the one taken over is still its heir's"
    );
    assert_eq!(
        db.query_text(
            "SELECT count(*) FILTER (WHERE owner IS NULL) || ' free, '
                    || count(*) FILTER (WHERE owner IS NOT NULL) || ' held' FROM leases"
        )
        .await,
        "19 free, 1 held",
        "the closed conversations' leases are given up, the heir keeps its own"
    );
    assert_eq!(
        db.query_text("SELECT count(*) FROM reply_parts WHERE outbound_id = 'wamid.' || (SELECT customer FROM turns WHERE turns.id = reply_parts.turn_id)")
            .await,
        "20",
        "every part Meta accepted is recorded sent, the lost turn's too (Meta has it)"
    );
}

#[tokio::test]
async fn an_answered_turn_whose_customer_wrote_again_hands_over_the_next_turn_when_asked() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    let users = ["alone".to_owned(), "again".to_owned()];
    let turns = answered_turns(&store, &users).await;
    store
        .record(batch(vec![message("in.again.2", "again")]))
        .await
        .unwrap();

    let (alone, again) = tokio::join!(
        store.finish_and_claim(turns[0], TurnOutcome::Done, lane("alone")),
        store.finish_and_claim(turns[1], TurnOutcome::Done, lane("again")),
    );

    assert!(
        alone.unwrap().is_none(),
        "nothing waits for the first customer"
    );
    let next = again
        .unwrap()
        .expect("the second customer's new message is the next turn");
    let ids: Vec<&str> = next
        .messages
        .iter()
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(ids, ["in.again.2"]);
    assert_eq!(
        db.query_text(
            "SELECT string_agg(message_id || '=' || state, ',' ORDER BY seq) FROM inbound"
        )
        .await,
        "in.alone=done,in.again=done,in.again.2=taken"
    );
}

#[tokio::test]
async fn closing_answered_turns_together_reads_their_conversations_not_every_waiting_one() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    // As the claim's test: 400 conversations waiting, and two more claimed here.
    super::turn_path_tests::history_then_burst(&db, &store).await;
    store
        .record(batch(vec![message("a", "me"), message("b", "you")]))
        .await
        .unwrap();
    let mut client = db.client().await;
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let mut claimed = Vec::new();
    for user in ["u0", "u1", "me", "you"] {
        let row = tx
            .query_one(
                &format!(
                    "SELECT turn_id, fence FROM wagate_claim('PNID', '{user}', 'tester', 25000,
                                                             50, 1, true)"
                ),
                &[],
            )
            .await
            .unwrap();
        claimed.push((user, row.get::<_, i64>(0), row.get::<_, i64>(1)));
    }
    let close = |turns: &[(&str, i64, i64)]| {
        let list = |f: &dyn Fn(&(&str, i64, i64)) -> String| {
            turns.iter().map(f).collect::<Vec<_>>().join(",")
        };
        format!(
            "SELECT * FROM wagate_finish_answered('tester', ARRAY[{}]::bigint[],
                 ARRAY[{}]::text[], ARRAY[{}]::text[], ARRAY[{}]::bigint[], ARRAY[{}]::boolean[],
                 1, ARRAY[{}]::int[], ARRAY[{}]::text[], ARRAY[{}]::bigint[])",
            list(&|t| t.1.to_string()),
            list(&|_| "'PNID'".to_owned()),
            list(&|t| format!("'{}'", t.0)),
            list(&|t| t.2.to_string()),
            list(&|_| "true".to_owned()),
            list(&|_| "NULL".to_owned()),
            list(&|_| "NULL".to_owned()),
            list(&|_| "NULL".to_owned()),
        )
    };
    // Two other conversations first, so the plans and caches are warm.
    super::turn_path_tests::buffers(&tx, &close(&claimed[..2])).await;
    let read = super::turn_path_tests::buffers(&tx, &close(&claimed[2..])).await;
    assert!(
        read < 100,
        "closing two turns read {read} buffers with 400 other conversations waiting"
    );
    assert_eq!(
        tx.query_one(
            "SELECT string_agg(state, ',' ORDER BY message_id) FROM inbound
             WHERE message_id IN ('a', 'b')",
            &[]
        )
        .await
        .unwrap()
        .get::<_, String>(0),
        "done,done",
        "the close answered the claimed messages"
    );
    tx.rollback().await.unwrap();
}
