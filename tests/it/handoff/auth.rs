//! Who may use the operator API: nobody without `console.token`, else a bearer token or the
//! console's session cookie (with a same-origin check on its POSTs).

use super::{world, TOKEN};
use crate::support::fake_llm;
use crate::support::*;
use serde_json::json;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/conversations"),
    ("GET", "/v1/conversations/abc/messages"),
    ("POST", "/v1/conversations/abc/messages"),
    ("POST", "/v1/conversations/abc/handoff"),
    ("POST", "/v1/conversations/abc/release"),
    ("GET", "/v1/events"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
];

async fn status_of(server: &TestServer, method: &str, path: &str, bearer: Option<&str>) -> u16 {
    let url = server.url(path);
    let mut request = match method {
        "GET" => server.client.get(url),
        _ => server.client.post(url).json(&json!({"text": "hi"})),
    };
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn without_a_console_token_every_operator_route_is_not_found() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    for (method, path) in ROUTES {
        assert_eq!(
            status_of(&server, method, path, None).await,
            404,
            "{method} {path}"
        );
        assert_eq!(
            status_of(&server, method, path, Some("")).await,
            404,
            "{method} {path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn operator_routes_refuse_a_missing_or_wrong_token() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("hi")).await;
    for (method, path) in ROUTES.iter().filter(|(_, p)| !p.starts_with("/console")) {
        assert_eq!(
            status_of(&w.server, method, path, None).await,
            401,
            "{method} {path}"
        );
        assert_eq!(
            status_of(&w.server, method, path, Some("wrong")).await,
            401,
            "{method} {path}"
        );
    }
    assert_eq!(
        status_of(&w.server, "GET", "/v1/conversations", Some(TOKEN)).await,
        200
    );
    // An unknown conversation, with the right token.
    assert_eq!(
        status_of(
            &w.server,
            "GET",
            "/v1/conversations/abc/messages",
            Some(TOKEN)
        )
        .await,
        404
    );
}

#[tokio::test]
async fn the_console_login_sets_a_strict_http_only_cookie_that_opens_the_api() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("hi")).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A wrong token: the form again, with an error.
    let wrong = client
        .post(w.server.url("/console/login"))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains("<form") && page.contains("not right"),
        "{page}"
    );

    let ok = client
        .post(w.server.url("/console/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/console/");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains(TOKEN),
        "the token itself is never the cookie"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let listed = client
        .get(w.server.url("/v1/conversations"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    // A forged cookie is refused.
    let forged = client
        .get(w.server.url("/v1/conversations"))
        .header("cookie", "wagate_console=0000")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // Logging out clears the cookie.
    let out = client
        .post(w.server.url("/console/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn a_cookie_post_from_another_site_is_refused_and_one_from_the_console_is_not() {
    let w = world(|c| c, |_, _| fake_llm::ollama_says("hi")).await;
    w.customer_says("wamid.csrf.1", "15550001111", "hello")
        .await;
    let id = w.conversation_of("15550001111").await;
    let session = format!(
        "wagate_console={}",
        wagate::http::operator::auth::session_value(TOKEN)
    );
    let url = w.server.url(&format!("/v1/conversations/{id}/handoff"));
    let evil = w
        .server
        .client
        .post(&url)
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    let bare = w
        .server
        .client
        .post(&url)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403, "no Origin and no X-Requested-With");
    assert_eq!(w.state_of(&id).await, "agent");

    let host = w.server.base.trim_start_matches("http://").to_owned();
    let ours = w
        .server
        .client
        .post(&url)
        .header("cookie", &session)
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 200);
    assert_eq!(w.state_of(&id).await, "human");
}
