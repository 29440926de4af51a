//! The operator console in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
//! driven through WebDriver): what an operator does with a mouse and keyboard, checked against
//! what reaches the fake Graph API. Skipped without `WAGATE_TEST_CHROMEDRIVER` (see .ci/run).

use crate::support::browser::Browser;
use crate::support::fake_graph::Reply;
use crate::support::fake_llm;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

pub const CONSOLE_TOKEN: &str = "console-test-token";

/// The test app with the console on (`CONSOLE_TOKEN`), and the console's helpers.
pub struct ConsoleWorld(TestApp);

impl std::ops::Deref for ConsoleWorld {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.0
    }
}

impl ConsoleWorld {
    pub async fn start(
        llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
    ) -> ConsoleWorld {
        Self::start_with(|c| c, llm).await
    }

    /// With `channel` applied to `channels.whatsapp`.
    pub async fn start_with(
        channel: impl FnOnce(Channel) -> Channel + 'static,
        llm: impl Fn(&fake_llm::Recorded, usize) -> fake_llm::Reply + Send + Sync + 'static,
    ) -> ConsoleWorld {
        let app = TestApp::builder()
            .console(CONSOLE_TOKEN)
            .channel(channel)
            .llm(llm)
            .start()
            .await;
        ConsoleWorld(app)
    }

    /// The operator API with the bearer token.
    pub async fn api(&self, method: reqwest::Method, path: &str) -> serde_json::Value {
        let response = self
            .server
            .client
            .request(method, self.server.url(path))
            .bearer_auth(CONSOLE_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(json!({}))
    }

    /// The status of an operator `POST` to `path`, whatever it is.
    pub async fn post_status(&self, path: &str) -> reqwest::StatusCode {
        self.server
            .client
            .post(self.server.url(path))
            .bearer_auth(CONSOLE_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A customer's text message, timestamped now (inside the 24-hour window).
    pub async fn customer_says(&self, id: &str, from: &str, name: &str, text: &str) {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"profile": {"name": name}, "wa_id": from}],
                "messages": [{"from": from, "id": id, "timestamp": chrono::Utc::now().timestamp().to_string(),
                              "type": "text", "text": {"body": text}}]
            }}]}]
        });
        let response = self
            .server
            .post_signed(&serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(response.status(), 200);
    }

    /// Meta's delivery status for an outbound message.
    pub async fn status(&self, outbound_id: &str, to: &str, status: &str) {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": outbound_id, "status": status,
                          "timestamp": chrono::Utc::now().timestamp().to_string(), "recipient_id": to}]
        }}]}]});
        let response = self
            .server
            .post_signed(&serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(response.status(), 200);
    }

    /// The id of the conversation with `user`, from the operator API.
    pub async fn conversation_id(&self, user: &str) -> String {
        for _ in 0..200 {
            let list = self.api(reqwest::Method::GET, "/v1/conversations").await;
            if let Some(c) = list["conversations"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["user"] == user))
            {
                return c["id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no conversation with {user}");
    }
}

/// Opens the console and signs in through the login form, as a person would.
pub async fn sign_in(browser: &Browser, server: &TestServer) {
    browser.client.goto(&server.url("/console/")).await.unwrap();
    browser
        .find("#token")
        .await
        .send_keys(CONSOLE_TOKEN)
        .await
        .unwrap();
    browser
        .find("form.login-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#conversations").await;
    browser.wait_for_text("Live").await;
}

async fn click(browser: &Browser, css: &str) {
    browser.click(css).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_a_message_arrive_live_takes_over_replies_and_hands_back() {
    let Some(browser) = Browser::start((1280, 800)).await else {
        return;
    };
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("Happy to help with that.")).await;

    // Without a session the page is the login form; signing in shows the console.
    browser
        .client
        .goto(&w.server.url("/console/"))
        .await
        .unwrap();
    browser.wait_for_text("Console token").await;
    sign_in(&browser, &w.server).await;
    browser.wait_for_text("No conversations yet.").await;
    // The stylesheet applied under the page's Content-Security-Policy (the script evidently ran).
    let background = browser
        .find(".topbar")
        .await
        .css_value("background-color")
        .await
        .unwrap();
    assert_eq!(background, "rgba(11, 110, 79, 1)");

    // A customer writes; the conversation appears without a reload.
    w.customer_says(
        "wamid.console.1",
        "15551239876",
        "Ana Pérez",
        "Where is my order 1234?",
    )
    .await;
    browser.wait_for_text("Ana Pérez").await;
    click(&browser, "#conversations button").await;
    browser.wait_for_text("Where is my order 1234?").await;
    // The agent answers; its reply shows up live too, marked as the agent's.
    w.graph
        .wait_for_text_sends(1, Duration::from_secs(10))
        .await;
    browser.wait_for_text("Happy to help with that.").await;
    browser.find("li.msg.out.agent").await;

    // Take over: the conversation is a person's now, for the API too.
    click(&browser, "#takeover").await;
    browser.wait_for_text("With a person").await;
    let id = w.conversation_id("15551239876").await;
    let list = w
        .api(reqwest::Method::GET, "/v1/conversations?state=human")
        .await;
    assert_eq!(list["conversations"][0]["id"], id.as_str());

    // While it is human the agent stays silent.
    w.customer_says(
        "wamid.console.2",
        "15551239876",
        "Ana Pérez",
        "Hello? Anyone there?",
    )
    .await;
    browser.wait_for_text("Hello? Anyone there?").await;

    // Reply as a person: it reaches the customer through the Graph API, once.
    // From the keyboard: Ctrl+Enter in the box sends (WebDriver's Control, Enter, release).
    browser
        .find("#reply-text")
        .await
        .send_keys(
            "Hi Ana, this is Marta. Your order left our warehouse today.\u{E009}\u{E007}\u{E000}",
        )
        .await
        .unwrap();
    let sends = w
        .graph
        .wait_for_text_sends(2, Duration::from_secs(10))
        .await;
    assert_eq!(
        sends.len(),
        2,
        "the agent's answer, then the operator's: nothing else"
    );
    assert_eq!(
        sends[1].body["text"]["body"],
        "Hi Ana, this is Marta. Your order left our warehouse today."
    );
    assert_eq!(sends[1].body["to"], "15551239876");
    browser
        .wait_for_text("Hi Ana, this is Marta. Your order left our warehouse today.")
        .await;
    browser.find("li.msg.out.operator").await;
    assert_eq!(
        w.llm.count(),
        1,
        "no agent turn ran for the message that came in while a person had the conversation"
    );

    // Meta says the customer read it: the tick turns to "read" without a reload.
    let mut wamid = None;
    for _ in 0..200 {
        let messages = w
            .api(
                reqwest::Method::GET,
                &format!("/v1/conversations/{id}/messages"),
            )
            .await;
        wamid = messages["messages"]
            .as_array()
            .and_then(|all| all.iter().rev().find(|m| m["author"] == "operator"))
            .and_then(|m| m["message_id"].as_str().map(str::to_owned));
        if wamid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let wamid = wamid.expect("the operator's reply was accepted by Meta");
    w.status(&wamid, "15551239876", "read").await;
    browser.find("li.msg.out.operator[data-status=read]").await;

    // Hand back.
    click(&browser, "#handback").await;
    browser.wait_for_text("The agent is answering").await;
    let list = w
        .api(reqwest::Method::GET, "/v1/conversations?state=human")
        .await;
    assert_eq!(list["conversations"], json!([]));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_does_not_open_the_console() {
    let Some(browser) = Browser::start((1280, 800)).await else {
        return;
    };
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("hi")).await;
    browser
        .client
        .goto(&w.server.url("/console/"))
        .await
        .unwrap();
    browser
        .find("#token")
        .await
        .send_keys("not-the-token")
        .await
        .unwrap();
    click(&browser, "form.login-form button[type=submit]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser
        .client
        .goto(&w.server.url("/console/"))
        .await
        .unwrap();
    browser.wait_for_text("Console token").await;
    assert!(!browser.body_text().await.contains("Take over"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_console_shows_one_pane_at_a_time_without_sideways_scrolling() {
    let Some(browser) = Browser::start((390, 844)).await else {
        return;
    };
    let w = ConsoleWorld::start(|_, _| fake_llm::ollama_says("Sure, one moment.")).await;
    w.customer_says(
        "wamid.phone.1",
        "15551230042",
        "Li Wei",
        "Can I change my delivery address?",
    )
    .await;
    sign_in(&browser, &w.server).await;
    browser.wait_for_text("Li Wei").await;
    assert!(!browser
        .find("#conversation")
        .await
        .is_displayed()
        .await
        .unwrap());

    click(&browser, "#conversations button").await;
    browser
        .wait_for_text("Can I change my delivery address?")
        .await;
    assert!(!browser.find(".sidebar").await.is_displayed().await.unwrap());
    assert!(browser
        .find("#takeover")
        .await
        .is_displayed()
        .await
        .unwrap());
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways by {overflow} px on a phone"
    );

    click(&browser, "#back").await;
    assert!(browser.find(".sidebar").await.is_displayed().await.unwrap());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_turn_is_listed_and_the_retry_button_gets_the_customer_an_answer() {
    let Some(browser) = Browser::start((1280, 800)).await else {
        return;
    };
    // Meta refuses the reply for good (131026, undeliverable) until the operator has seen the
    // failure: the turn fails.
    let w = ConsoleWorld::start(|_, _| {
        fake_llm::ollama_says("Sorry for the wait: here is your answer.")
    })
    .await;
    w.graph
        .script((0..6).map(|_| Reply::graph_error(400, 131026)));
    w.customer_says(
        "wamid.retry.1",
        "15551230077",
        "Sam Okafor",
        "Do you ship to Lagos?",
    )
    .await;
    sign_in(&browser, &w.server).await;
    click(&browser, "#tab-problems").await;
    browser.wait_for_text("Failed turns and dead letters").await;
    let retry = browser.find("#turns button[aria-label^=Retry]").await;
    let card = browser.find("#turns li").await.text().await.unwrap();
    assert!(card.contains("Sam Okafor"), "{card}");
    let answered_before = w.graph.text_sends().len();
    w.graph.clear_script();
    retry.click().await.unwrap();
    let sends = w
        .graph
        .wait_for_text_sends(answered_before + 1, Duration::from_secs(15))
        .await;
    assert_eq!(
        sends.last().unwrap().body["text"]["body"],
        "Sorry for the wait: here is your answer."
    );
    browser.wait_for_text("No failed turns.").await;
    browser.close().await;
}
