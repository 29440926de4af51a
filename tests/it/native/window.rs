//! The 24-hour customer service window for the agent's replies.

use super::tools::scripted;
use super::*;
use crate::support::fake_graph::Reply as GraphReply;

const DAY_AND_AN_HOUR: i64 = 25 * 3600;

fn template_body(user: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
           "type": "template",
           "template": {"name": "hello_again", "language": {"code": "en_US"}}})
}

#[tokio::test]
async fn a_reply_to_a_message_25_hours_old_fails_outside_the_window_without_a_graph_call() {
    let w = world(|c| c, scripted(vec![], "Sorry for the wait!")).await;
    let user = "15550009101";
    w.says(user, "wamid.win.1", "hello?", DAY_AND_AN_HOUR).await;
    assert!(
        eventually(10, || w.inbox_text().contains("outside_24h_window")).await,
        "wagate inbox shows the reason:\n{}",
        w.inbox_text()
    );
    assert_eq!(chats(&w.llm).len(), 1, "the agent answered");
    assert!(
        w.graph.sends().is_empty(),
        "no Graph call: {:?}",
        w.graph.sends()
    );
    let out: Vec<Value> = w
        .messages_with(user)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["status"], "failed");
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("outside_24h_window"),
        "{out:?}"
    );
}

#[tokio::test]
async fn with_a_reopen_template_the_template_goes_out_and_the_held_reply_follows_when_the_customer_writes(
) {
    let w = world(with_template, move |request, _| {
        if request.uri.contains("/api/show") {
            return fake_llm::Reply::status(404, json!({"error": "not found"}));
        }
        let asked = fake_llm::messages_of(request)
            .last()
            .and_then(|m| m["content"].as_str().map(str::to_owned))
            .unwrap_or_default();
        fake_llm::ollama_says(&format!("answer to {asked}"))
    })
    .await;
    let user = "15550009102";
    w.says(user, "wamid.tpl.1", "are you open?", DAY_AND_AN_HOUR)
        .await;
    let sends = w.graph.wait_for_sends(1, WAIT).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(body_without_callback(&sends[0], 0), template_body(user));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.graph.sends().len(),
        1,
        "the reply is held, the template sent once"
    );
    let statuses: Vec<(String, String)> = w
        .messages_with(user)
        .await
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("answer to are you open?".into(), "held".into())),
        "{statuses:?}"
    );

    // The customer answers the template: the held reply goes out first, then the new answer.
    w.says(user, "wamid.tpl.2", "yes, hello", 0).await;
    let sends = w.graph.wait_for_sends(3, WAIT).await;
    assert_eq!(
        texts(&w.graph),
        ["answer to are you open?", "answer to yes, hello"],
        "{sends:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.graph.sends().len(), 3, "nothing twice");
}

#[tokio::test]
async fn metas_131047_is_handled_like_a_closed_window() {
    let w = world(|c| c, scripted(vec![], "a reply Meta refuses")).await;
    // Meta's clock says the window closed even though ours did not (clock skew).
    w.graph.script_sends([GraphReply::graph_error(400, 131047)]);
    let user = "15550009103";
    w.says(user, "wamid.skew.1", "hi", 0).await;
    assert!(
        eventually(10, || w.inbox_text().contains("outside_24h_window")).await,
        "{}",
        w.inbox_text()
    );
    assert_eq!(w.graph.sends().len(), 1, "refused once, not retried");
}

#[tokio::test]
async fn a_reply_the_clock_pushed_past_24_hours_is_never_sent_as_free_text() {
    // The model takes its time; meanwhile the clock moves a day and an hour on (a long
    // backlog, say): the reply meets a closed window.
    let w = world(
        |c| c,
        |request, _| {
            if request.uri.contains("/api/show") {
                return fake_llm::Reply::status(404, json!({"error": "not found"}));
            }
            fake_llm::ollama_says("late answer").after(Duration::from_millis(500))
        },
    )
    .await;
    let user = "15550009104";
    w.says(user, "wamid.late.1", "hello", 0).await;
    assert!(
        eventually(5, || chats(&w.llm).len() == 1).await,
        "the turn started"
    );
    w.shift
        .store(DAY_AND_AN_HOUR * 1000, std::sync::atomic::Ordering::SeqCst);
    assert!(
        eventually(10, || w.inbox_text().contains("outside_24h_window")).await,
        "{}",
        w.inbox_text()
    );
    assert!(w.graph.text_sends().is_empty());
}

#[tokio::test]
async fn error_reply_is_not_sent_as_free_text_outside_the_window_either() {
    let w = world(
        |c| c,
        |_, _| fake_llm::Reply::status(500, json!({"error": "model crashed"})),
    )
    .await;
    let user = "15550009105";
    w.says(user, "wamid.err.1", "hello?", DAY_AND_AN_HOUR).await;
    assert!(
        eventually(10, || w
            .inbox_json()
            .contains("error_reply not sent: outside_24h_window"))
        .await,
        "{}",
        w.inbox_json()
    );
    assert!(w.graph.sends().is_empty(), "{:?}", w.graph.sends());
}
