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
    let config = ConfigDir::standard("");
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
    let status = |path: String| {
        let client = w.server.client.clone();
        let url = w.server.url(&path);
        async move {
            client
                .post(url)
                .bearer_auth(CONSOLE_TOKEN)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(format!("/v1/turns/{id}/retry")).await, 409);
    assert_eq!(status("/v1/turns/999999/retry".into()).await, 404);
    w.server.stop().await;
}
