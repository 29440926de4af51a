//! A take-over on one replica silences the turn running on another at once: the replica that
//! commits it tells the others (PostgreSQL `NOTIFY`), and whatever their mirrors still say,
//! the store refuses to mark a part `sending` once a person has the conversation.

use super::*;

const TOKEN: &str = "replicas-operator-token";

fn console() -> String {
    format!("    console:\n      token: \"{TOKEN}\"\n")
}

fn conversation(user: &str) -> String {
    wagate::handoff::conversation_id(&wagate::inbox::LaneKey {
        phone_number_id: PHONE_NUMBER_ID.into(),
        user: user.into(),
    })
}

/// Texts `graph` accepted for `user`.
fn texts_to(graph: &FakeGraph, user: &str) -> Vec<String> {
    graph
        .accepted_sends()
        .into_iter()
        .filter(|(_, send)| send.body["to"] == user)
        .map(|(_, send)| send.body["text"]["body"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// An operator takes `user`'s conversation over through `replica`'s operator API.
async fn take_over(client: &reqwest::Client, replica: &Replica, user: &str) {
    let taken = client
        .post(replica.url(&format!("/v1/conversations/{}/handoff", conversation(user))))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the replica answers");
    assert_eq!(
        taken.status().as_u16(),
        200,
        "the conversation was taken over"
    );
}

#[tokio::test]
async fn a_take_over_through_one_replica_stops_a_slow_turn_on_another_before_its_reply_goes_out() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let graph = FakeGraph::start().await;
    // The model answers 1.5 s after it is asked; the take-over lands well before that. Heard
    // only at B's 2 s poll, the take-over would stop the turn after the answer about half of
    // the time; and without the store's fence the reply would then go out.
    let llm = echo_model(Duration::from_millis(1500)).await;
    let config = tempfile::tempdir().unwrap();
    write_config(config.path(), &graph, &llm.url, &console());
    let a = Replica::start(config.path(), &db.url, &[]).await;
    let b = Replica::start(config.path(), &db.url, &[]).await;
    let client = reqwest::Client::new();
    let user = "15554000001";

    let body = text_body("wamid.slow.0", user, &word(user, 0));
    assert_eq!(post(&client, &b.webhook(), &body).await, Some(200));
    assert!(within(10, || llm.count() >= 1).await, "B asked the model");
    take_over(&client, &a, user).await;

    // Past the model's answer and B's next poll.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        texts_to(&graph, user),
        Vec::<String>::new(),
        "B sent nothing"
    );
    assert_eq!(
        llm.answered(),
        0,
        "B gave the model call up as soon as it heard of the take-over"
    );

    // The operator's reply through B goes out, once.
    let reply = client
        .post(b.url(&format!(
            "/v1/conversations/{}/messages",
            conversation(user)
        )))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"text": "A person here."}))
        .send()
        .await
        .expect("B answers");
    assert_eq!(reply.status().as_u16(), 202);
    assert!(
        within(10, || !texts_to(&graph, user).is_empty()).await,
        "the operator's reply went out"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts_to(&graph, user), vec!["A person here.".to_owned()]);
    drop((a, b));
}

#[tokio::test]
async fn a_replica_that_never_heard_of_a_take_over_still_sends_no_reply_part() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let graph = FakeGraph::start().await;
    let llm = echo_model(Duration::from_millis(600)).await;
    let config = tempfile::tempdir().unwrap();
    write_config(config.path(), &graph, &llm.url, &console());
    let a = Replica::start(config.path(), &db.url, &[]).await;
    // B hears no announcement (`--notify off`): until its next 2 s poll its mirror says the
    // agent has the conversation, and only the store's refusal keeps its reply in.
    let b = Replica::start(config.path(), &db.url, &[("WAGATE_NOTIFY", "off")]).await;
    let client = reqwest::Client::new();
    let user = "15554000002";

    let body = text_body("wamid.deaf.0", user, &word(user, 0));
    assert_eq!(post(&client, &b.webhook(), &body).await, Some(200));
    assert!(within(10, || llm.count() >= 1).await, "B asked the model");
    take_over(&client, &a, user).await;

    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        texts_to(&graph, user),
        Vec::<String>::new(),
        "B sent nothing"
    );
    drop((a, b));
}
