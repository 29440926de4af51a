//! The console's own routes over real HTTP: the page (login form or console), its embedded
//! assets and their headers, and the failed-turn routes behind the retry button.

use crate::console_browser::{ConsoleWorld, CONSOLE_TOKEN};
use crate::support::fake_graph::Reply;
use crate::support::fake_llm;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn without_a_console_token_the_console_and_its_routes_do_not_exist() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    for path in [
        "/console",
        "/console/",
        "/console/console.js",
        "/console/console.css",
        "/v1/inbox",
    ] {
        assert_eq!(server.get(path).await.status(), 404, "{path}");
    }
    let retry = server
        .client
        .post(server.url("/v1/turns/1/retry"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn without_a_session_the_console_page_is_the_login_form_under_a_strict_policy() {
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("hi")).await;
    let page = w.server.get("/console/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/console/login\"") && html.contains("name=\"token\""));
    assert!(
        !html.contains("Take over"),
        "the console itself is not shown"
    );

    // The stylesheet and script are served (the login form needs the former).
    let js = w.server.get("/console/console.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // An unchanged file is not sent again.
    let etag = js.headers()["etag"].clone();
    let again = w
        .server
        .client
        .get(w.server.url("/console/console.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The JSON routes want credentials.
    assert_eq!(w.server.get("/v1/inbox").await.status(), 401);
    w.server.stop().await;
}

#[tokio::test]
async fn with_the_token_the_console_page_is_the_console() {
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("hi")).await;
    let page = w
        .server
        .client
        .get(w.server.url("/console/"))
        .bearer_auth(CONSOLE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Take over") && html.contains("/console/console.js"));
    w.server.stop().await;
}

#[tokio::test]
async fn a_failed_turn_is_listed_and_retrying_it_answers_the_customer() {
    // Meta refuses the reply for good (131026, undeliverable) until the operator has seen the
    // failure: the turn fails.
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("Here is your answer at last.")).await;
    w.graph
        .script((0..6).map(|_| Reply::graph_error(400, 131026)));
    w.customer_says(
        "wamid.inbox.1",
        "15551230099",
        "Kim",
        "Is the shop open today?",
    )
    .await;

    let mut failed = json!([]);
    for _ in 0..400 {
        failed = w.api(reqwest::Method::GET, "/v1/inbox").await["failed_turns"].clone();
        if failed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let turn = &failed[0];
    assert_eq!(turn["user"], "15551230099");
    assert!(
        turn["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{turn}"
    );
    let id = turn["id"].as_i64().unwrap();
    let sent_before = w.graph.text_sends().len();

    w.graph.clear_script();
    let retry = w
        .api(reqwest::Method::POST, &format!("/v1/turns/{id}/retry"))
        .await;
    assert_eq!(retry["messages"], 1);
    let sends = w
        .graph
        .wait_for_text_sends(sent_before + 1, Duration::from_secs(10))
        .await;
    assert_eq!(
        sends.last().unwrap().body["text"]["body"],
        "Here is your answer at last."
    );
    assert_eq!(
        w.api(reqwest::Method::GET, "/v1/inbox").await["failed_turns"],
        json!([])
    );

    // A turn that is no longer failed cannot be retried again; an unknown one does not exist.
    assert_eq!(w.post_status(&format!("/v1/turns/{id}/retry")).await, 409);
    assert_eq!(w.post_status("/v1/turns/999999/retry").await, 404);
    w.server.stop().await;
}

#[tokio::test]
async fn a_dead_letter_retried_is_answered_when_understood_and_listed_once_when_not() {
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("We open at nine.")).await;
    let dead_letters =
        || async { w.api(reqwest::Method::GET, "/v1/inbox").await["dead_letters"].clone() };

    // A field wagate does not handle stays a dead letter when retried: one, with its reason.
    let unhandled = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]});
    let response = w
        .server
        .post_signed(&serde_json::to_vec(&unhandled).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let listed = dead_letters().await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let first = listed[0]["id"].as_i64().unwrap();
    let retried = w
        .api(
            reqwest::Method::POST,
            &format!("/v1/dead-letters/{first}/retry"),
        )
        .await;
    assert_eq!(retried["still_dead"], true, "{retried}");
    let listed = dead_letters().await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_ne!(
        listed[0]["id"].as_i64().unwrap(),
        first,
        "the old row is replaced"
    );
    assert!(listed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("account_update"));
    let still = listed[0]["id"].as_i64().unwrap();

    // A customer's message kept as a dead letter (as a wagate that did not understand it would
    // have): retried, it is recorded and answered, and the dead letter is gone.
    let message = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551230077"}],
        "messages": [{"from": "15551230077", "id": "wamid.dead.1", "timestamp": chrono::Utc::now().timestamp().to_string(),
                      "type": "text", "text": {"body": "When do you open?"}}]
    }}]}]});
    let store = wagate::inbox::Store::open(w.data.path(), wagate::inbox::store::Durability::Full)
        .expect("the server's database");
    store
        .record(wagate::inbox::Batch {
            dead_letters: vec![(
                "not understood by an older wagate".into(),
                message.to_string(),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = dead_letters().await;
    let kept = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"].as_i64() != Some(still))
        .expect("the recorded dead letter is listed")["id"]
        .as_i64()
        .unwrap();
    let sent_before = w.graph.text_sends().len();
    let retried = w
        .api(
            reqwest::Method::POST,
            &format!("/v1/dead-letters/{kept}/retry"),
        )
        .await;
    assert_eq!(retried["still_dead"], false, "{retried}");
    assert_eq!(retried["recorded"], 1, "{retried}");
    let sends = w
        .graph
        .wait_for_text_sends(sent_before + 1, Duration::from_secs(10))
        .await;
    let reply = sends.last().unwrap();
    assert_eq!(reply.body["to"], "15551230077");
    assert_eq!(reply.body["text"]["body"], "We open at nine.");
    let ids: Vec<i64> = dead_letters()
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![still], "only the still-unhandled one is left");

    // Gone once retried; an unknown one does not exist.
    assert_eq!(
        w.post_status(&format!("/v1/dead-letters/{kept}/retry"))
            .await,
        404
    );
    assert_eq!(w.post_status("/v1/dead-letters/999999/retry").await, 404);
    w.server.stop().await;
}
