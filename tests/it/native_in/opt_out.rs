//! Opt-out: a STOP keyword is confirmed exactly once and silences everything until START;
//! Meta's `user_preferences` stop and resume are recorded the same way; the state survives a
//! restart.

use super::{text, world};
use crate::support::fake_llm;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

const CONFIRMATION: &str = "You will not receive more messages from us. Send START to talk again.";

#[tokio::test]
async fn a_stop_keyword_is_confirmed_once_and_silences_the_agent_until_start() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    let user = "15550004001";
    w.customer_says("wamid.oo.1", user, "hi").await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(w.chats().len(), 1);

    // STOP, in any case and with spaces, delivered twice by Meta: one confirmation.
    let stop = text("wamid.oo.2", user, "  sToP ");
    w.post(&stop).await;
    let sends = w
        .graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(sends[1].body["text"]["body"], CONFIRMATION);
    assert_eq!(sends[1].body["to"], user);
    w.post(&stop).await;
    w.customer_says("wamid.oo.3", user, "hello?").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.sent_texts().len(), 2, "{:?}", w.sent_texts());
    assert_eq!(w.chats().len(), 1, "no agent turn while opted out");

    let line = w.listed(user).await;
    assert_eq!(line["opted_out"], true);
    let id = line["id"].as_str().unwrap().to_owned();
    // No operator message either.
    let (status, body) = w
        .api_post(
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "we miss you"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "opted_out");
    assert!(w.server.wait_for_metric("wagate_opt_outs_total 1", 5).await);

    // START is answered by the agent as usual, and only START (not what came while opted out).
    w.customer_says("wamid.oo.4", user, "Start").await;
    let sends = w
        .graph
        .wait_for_text_sends(3, Duration::from_secs(10))
        .await;
    assert_eq!(sends[2].body["text"]["body"], "agent answer");
    let chats = w.chats();
    assert_eq!(chats.len(), 2);
    let last = fake_llm::messages_of(&chats[1]).last().cloned().unwrap();
    assert_eq!(last["content"], "Start");
    let line = w.listed_until(user, |l| l["opted_out"] == false).await;
    assert_eq!(line["opted_out"], false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.sent_texts().iter().filter(|t| *t == CONFIRMATION).count(),
        1,
        "the confirmation went out exactly once"
    );
}

#[tokio::test]
async fn a_reply_still_being_written_when_the_customer_sends_stop_never_goes_out() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("a slow agent answer").after(Duration::from_millis(1500)),
    )
    .await;
    let user = "15550004003";
    w.customer_says("wamid.oos.1", user, "tell me about your plans")
        .await;
    // The model is thinking when STOP arrives.
    for _ in 0..200 {
        if w.llm.count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.llm.count(), 1, "the turn is running");
    w.customer_says("wamid.oos.2", user, "STOP").await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(w.sent_texts(), vec![CONFIRMATION.to_owned()]);
}

#[tokio::test]
async fn an_opted_out_customer_stays_silenced_across_a_restart() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    let user = "15550004002";
    w.customer_says("wamid.oor.1", user, "STOP").await;
    let sends = w
        .graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(sends[0].body["text"]["body"], CONFIRMATION);
    // Stop once the confirmation is recorded as accepted (the outbox's own business).
    let id = w.listed(user).await["id"].as_str().unwrap().to_owned();
    let mut recorded = false;
    for _ in 0..250 {
        let messages = w.messages(&id).await;
        if messages
            .iter()
            .any(|m| m["direction"] == "out" && m["message_id"].is_string())
        {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recorded, "the confirmation was recorded as sent");

    let w = w.restart().await;
    w.customer_says("wamid.oor.2", user, "are you there?").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.chats().len(), 0, "no agent turn after the restart either");
    assert_eq!(w.sent_texts(), vec![CONFIRMATION.to_owned()]);
    assert_eq!(w.listed(user).await["opted_out"], true);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap()
}

#[tokio::test]
async fn metas_marketing_stop_is_recorded_shown_as_opted_out_and_resume_undoes_it() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    // The user of the fixtures.
    let user = "16505551234";
    w.customer_says("wamid.up.1", user, "hi").await;
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    assert_eq!(w.listed(user).await["opted_out"], false);

    w.post(&fixture("derived__user_marketing_preferences__stop"))
        .await;
    let line = w.listed_until(user, |l| l["opted_out"] == true).await;
    assert_eq!(line["opted_out"], true);
    // Redelivered: still one opt-out.
    w.post(&fixture("derived__user_marketing_preferences__stop"))
        .await;
    w.customer_says("wamid.up.2", user, "hello").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.chats().len(), 1, "no agent turn while opted out");
    assert_eq!(w.sent_texts().len(), 1, "Meta's own stop sends nothing");
    assert!(w.server.wait_for_metric("wagate_opt_outs_total 1", 5).await);
    // Understood, so not a dead letter.
    let metrics = w.server.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("wagate_dead_letters_total 1"),
        "{metrics}"
    );

    w.post(&fixture("pywa__user_marketing_preferences__resume"))
        .await;
    let line = w.listed_until(user, |l| l["opted_out"] == false).await;
    assert_eq!(line["opted_out"], false);
    w.customer_says("wamid.up.3", user, "back again").await;
    w.graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(w.chats().len(), 2);
}

#[tokio::test]
async fn a_customer_who_stopped_in_whatsapp_before_writing_is_listed_as_opted_out() {
    let w = world(
        "llama3.1:8b",
        |a| a,
        |_, _| fake_llm::ollama_says("agent answer"),
    )
    .await;
    w.post(&fixture("derived__user_marketing_preferences__stop"))
        .await;
    let line = w.listed("16505551234").await;
    assert_eq!(line["opted_out"], true);
    assert_eq!(line["phone_number_id"], PHONE_NUMBER_ID);
    assert!(w.graph.text_sends().is_empty());
}
