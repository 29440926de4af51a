//! HTTP abuse against the running server: broken, slow, huge and repeated requests. The server
//! may refuse them (4xx) or close the connection, but never answers 5xx for input it merely
//! rejects, never falls over, and answers `/readyz` 200 afterwards.

use crate::support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wagate::net::HttpLimits;

/// Short timeouts so the slow-client tests run in a second.
fn short_limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        shutdown_timeout: Duration::from_secs(2),
        ..HttpLimits::default()
    }
}

struct Setup {
    server: TestServer,
    recorder: Arc<recorder::Recorder>,
    _config: ConfigDir,
    _data: tempfile::TempDir,
}

async fn setup(limits: HttpLimits) -> Setup {
    let recorder = recorder::Recorder::new(Duration::ZERO);
    let TestApp {
        server,
        config,
        data,
        ..
    } = TestApp::builder()
        .dry_run()
        .handler(recorder.clone())
        .http_limits(limits)
        .start()
        .await;
    Setup {
        server,
        recorder,
        _config: config,
        _data: data,
    }
}

impl Setup {
    fn addr(&self) -> String {
        self.server.base.trim_start_matches("http://").to_owned()
    }

    /// `/readyz` on a fresh connection answers 200.
    async fn assert_ready(&self) {
        let response = reqwest::Client::new()
            .get(self.server.url("/readyz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the server still answers");
        assert_eq!(response.status(), 200, "the server is still ready");
    }
}

/// A signed POST written by hand: head with `extra_headers`, then `body`.
fn signed_request(body: &[u8], extra_headers: &str) -> Vec<u8> {
    let mut request = format!(
        "POST {WEBHOOK} HTTP/1.1\r\nHost: localhost\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        sign(body),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Writes `bytes` (ignoring a write refused because the server already closed), then reads
/// until the server closes or `wait` passes. Returns what the server answered.
async fn exchange(addr: &str, bytes: &[u8], half_close: bool, wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let _ = stream.write_all(bytes).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    read_until_close(&mut stream, wait).await
}

async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw answer, or `None` when the server closed without one.
fn status_of(answer: &str) -> Option<u16> {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn assert_refused_not_failed(answer: &str, what: &str) {
    if let Some(status) = status_of(answer) {
        assert!(
            (400..500).contains(&status),
            "{what}: expected a 4xx or a closed connection, got {status}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_body_cut_short_of_its_content_length_is_refused_and_never_recorded() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.cut", "15551230001", "hello")]);
    let mut request = signed_request(&body, "Content-Type: application/json\r\n");
    request.truncate(request.len() - body.len() / 2);
    let answer = exchange(&s.addr(), &request, true, Duration::from_secs(3)).await;
    assert_refused_not_failed(&answer, "truncated body");
    s.assert_ready().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.recorder.message_ids().is_empty(), "nothing was recorded");
}

#[tokio::test]
async fn malformed_requests_get_4xx_or_a_closed_connection_never_5xx() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.bad", "15551230001", "hello")]);
    let signature = sign(&body);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage request line", b"HELLO THERE\r\n\r\n".to_vec()),
        ("binary noise", vec![0u8, 159, 146, 150, 13, 10, 13, 10]),
        (
            "invalid chunk size",
            format!("POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {signature}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n").into_bytes(),
        ),
        (
            "two content lengths",
            format!("POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde").into_bytes(),
        ),
        (
            "negative content length",
            format!("POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n").into_bytes(),
        ),
        (
            "invalid UTF-8 in the signature header",
            [
                format!("POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=").into_bytes(),
                vec![0xff, 0xfe],
                format!("\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(),
                body.clone(),
            ]
            .concat(),
        ),
        ("a body that is not UTF-8", signed_request(&[0xff, 0xfe, 0x00, 0x7b], "")),
    ];
    for (what, request) in cases {
        let answer = exchange(&s.addr(), &request, true, Duration::from_secs(3)).await;
        assert_refused_not_failed(&answer, what);
    }
    s.assert_ready().await;
    assert!(s.recorder.message_ids().is_empty(), "nothing was recorded");
}

/// Meta sends `application/json`, but the signature is what proves a body genuine: a correctly
/// signed JSON body is accepted whatever its content type says (and an unsigned one never is).
#[tokio::test]
async fn a_signed_json_body_is_accepted_whatever_its_content_type() {
    let s = setup(short_limits()).await;
    let client = reqwest::Client::new();
    let types = [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ];
    for (i, content_type) in types.iter().enumerate() {
        let id = format!("wamid.ctype.{i}");
        let body = text_body(&[(&id, "15551230001", "hello")]);
        let mut request = client
            .post(s.server.url(WEBHOOK))
            .header("x-hub-signature-256", sign(&body))
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", *content_type);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, 200, "content type {content_type:?}");
        let unsigned = client
            .post(s.server.url(WEBHOOK))
            .header("content-type", content_type.unwrap_or("application/json"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            unsigned.status(),
            401,
            "unsigned, content type {content_type:?}"
        );
    }
    assert!(eventually(5, || s.recorder.message_ids().len() == types.len()).await);
    s.assert_ready().await;
}

#[tokio::test]
async fn a_64_kib_header_gets_431_or_a_closed_connection() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.hdr", "15551230001", "hello")]);
    let huge = format!("X-Padding: {}\r\n", "a".repeat(64 * 1024));
    let answer = exchange(
        &s.addr(),
        &signed_request(&body, &huge),
        false,
        Duration::from_secs(3),
    )
    .await;
    if let Some(status) = status_of(&answer) {
        assert_eq!(status, 431, "{answer}");
    }
    // So do many small headers adding up.
    let many: String = (0..2000)
        .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(30)))
        .collect();
    let answer = exchange(
        &s.addr(),
        &signed_request(&body, &many),
        false,
        Duration::from_secs(3),
    )
    .await;
    assert_refused_not_failed(&answer, "2000 headers");
    s.assert_ready().await;
    assert!(s.recorder.message_ids().is_empty());
}

#[tokio::test]
async fn deeply_nested_signed_json_is_refused_with_400_not_a_crash() {
    let s = setup(short_limits()).await;
    let brackets = "[".repeat(100_000);
    let nested_in_entry = format!("{{\"object\":\"x\",\"entry\":{}", "[".repeat(100_000));
    let closed = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let objects = "{\"a\":".repeat(100_000);
    for body in [&brackets, &nested_in_entry, &closed, &objects] {
        let response = s.server.post_signed(body.as_bytes()).await;
        assert_eq!(response.status(), 400, "{}...", &body[..20]);
    }
    // Nesting within serde_json's limit is an ordinary (if odd) body: a dead letter.
    let shallow = format!(
        "{{\"object\":\"x\",\"entry\":[{{\"changes\":{}{}}}]}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(s.server.post_signed(shallow.as_bytes()).await.status(), 200);
    s.assert_ready().await;
}

#[tokio::test]
async fn a_client_sending_its_headers_too_slowly_is_cut_off_while_others_are_served() {
    let s = setup(short_limits()).await;
    let addr = s.addr();
    let body = text_body(&[("wamid.slowhead", "15551230001", "hello")]);
    let request = signed_request(&body, "");
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // One byte every 50 ms: the head would take over 10 s; the server allows 0.5 s.
        for byte in &request {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        let answer = read_until_close(&mut stream, Duration::from_secs(1)).await;
        (started.elapsed(), answer)
    });

    // Meanwhile a normal client is served at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let normal = text_body(&[("wamid.normal", "15551230002", "hello")]);
    assert_eq!(s.server.post_signed(&normal).await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "served promptly"
    );

    let (elapsed, answer) = slow.await.unwrap();
    assert!(
        elapsed < Duration::from_secs(3),
        "the slow client was cut off, not served for {elapsed:?}"
    );
    assert_refused_not_failed(&answer, "slow header");
    s.assert_ready().await;
    assert_eq!(s.recorder.message_ids(), ["wamid.normal"]);
}

#[tokio::test]
async fn a_client_that_stops_mid_body_gets_408_or_a_closed_connection() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.stall", "15551230001", "hello")]);
    let mut request = signed_request(&body, "Content-Type: application/json\r\n");
    request.truncate(request.len() - 10);
    let started = Instant::now();
    // The socket stays open: the server must give up on its own.
    let answer = exchange(&s.addr(), &request, false, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut off after the body timeout, not {:?}",
        started.elapsed()
    );
    if let Some(status) = status_of(&answer) {
        assert_eq!(status, 408, "{answer}");
    }
    s.assert_ready().await;
    assert!(s.recorder.message_ids().is_empty());
}

/// A hand-written signed POST head announcing `length` bytes, with no body.
fn head_announcing(length: u64, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {WEBHOOK} HTTP/1.1\r\nHost: localhost\r\nX-Hub-Signature-256: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra_headers}\r\n",
        sign(b"{}")
    )
    .into_bytes()
}

#[tokio::test]
async fn a_10_gb_content_length_is_refused_at_the_headers_without_waiting_for_the_body() {
    // Body timeout long enough that waiting for the body would show.
    let s = setup(HttpLimits {
        body_read_timeout: Duration::from_secs(20),
        ..short_limits()
    })
    .await;
    let started = Instant::now();
    let answer = exchange(
        &s.addr(),
        &head_announcing(10_000_000_000, ""),
        false,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the headers, not after {:?}",
        started.elapsed()
    );
    s.assert_ready().await;
}

#[tokio::test]
async fn expect_100_continue_with_a_length_over_the_limit_gets_413_and_no_100_continue() {
    let s = setup(short_limits()).await;
    let five_mb = 5 * 1024 * 1024;
    let answer = exchange(
        &s.addr(),
        &head_announcing(five_mb, "Expect: 100-continue\r\n"),
        false,
        Duration::from_secs(3),
    )
    .await;
    assert!(!answer.contains(" 100 "), "no 100 Continue: {answer}");
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    s.assert_ready().await;
}

#[tokio::test]
async fn expect_100_continue_within_the_limit_still_gets_100_continue_and_is_accepted() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.expect", "15551230001", "hello")]);
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    let head = signed_request(
        &body,
        "Content-Type: application/json\r\nExpect: 100-continue\r\n",
    );
    stream
        .write_all(&head[..head.len() - body.len()])
        .await
        .unwrap();
    let mut interim = [0u8; 64];
    let n = stream.read(&mut interim).await.unwrap();
    assert!(
        String::from_utf8_lossy(&interim[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim[..n])
    );
    stream.write_all(&body).await.unwrap();
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&answer[..n])), Some(200));
}

#[tokio::test]
async fn five_hundred_idle_connections_do_not_keep_a_real_request_out() {
    let s = setup(HttpLimits {
        header_read_timeout: Duration::from_secs(5),
        ..HttpLimits::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(s.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let body = text_body(&[("wamid.idle", "15551230001", "hello")]);
    assert_eq!(s.server.post_signed(&body).await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    s.assert_ready().await;
    drop(idle);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let s = setup(short_limits()).await;
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    let started = Instant::now();
    let answer = read_until_close(&mut stream, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed by the server after {:?}",
        started.elapsed()
    );
    assert_refused_not_failed(&answer, "idle connection");

    // Kept alive after a request, it is closed the same way.
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_close(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    s.assert_ready().await;
}

#[tokio::test]
async fn over_the_connection_cap_a_new_client_waits_for_a_free_slot() {
    let s = setup(HttpLimits {
        max_connections: 4,
        ..short_limits()
    })
    .await;
    // TestServer's start left nothing open that matters: its pooled connection closes idle too.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(TcpStream::connect(s.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(s.server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("answered once the idle connections are closed");
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the fifth connection waited for a slot ({:?})",
        started.elapsed()
    );
    s.assert_ready().await;
}

#[tokio::test]
async fn a_hundred_concurrent_copies_of_one_delivery_are_all_acknowledged_and_answered_once() {
    let s = setup(short_limits()).await;
    let body = text_body(&[("wamid.same", "15551230001", "hello")]);
    let posts: Vec<_> = (0..100).map(|_| s.server.post_signed(&body)).collect();
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), 200);
    }
    assert!(eventually(5, || !s.recorder.turns().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.recorder.turns().len(), 1, "one turn");
    assert_eq!(s.recorder.message_ids(), ["wamid.same"]);
    s.assert_ready().await;
}

#[tokio::test]
async fn a_graceful_stop_lets_a_request_in_flight_finish() {
    let s = setup(HttpLimits {
        body_read_timeout: Duration::from_secs(5),
        ..short_limits()
    })
    .await;
    let body = text_body(&[("wamid.inflight", "15551230001", "hello")]);
    let request = signed_request(&body, "");
    let (head, tail) = request.split_at(request.len() - 20);
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let Setup {
        server,
        recorder,
        _config,
        _data,
    } = s;
    let base = server.base.clone();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no new connections once stopping"
    );
    stream.write_all(tail).await.unwrap();
    let answer = read_until_close(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
    // A 200 means recorded (the webhook answers only after the commit).
    drop(recorder);
}

/// A webhook body may carry a `url` (or a `link`) beside a media id; wagate asks the Graph API
/// for the media by id and downloads only from the URL that answer gives, so a URL planted in a
/// webhook never sees a request, let alone the access token.
#[tokio::test]
async fn a_media_url_planted_in_a_webhook_never_receives_a_request_or_the_token() {
    use crate::support::fake_graph::{FakeGraph, FakeMedia, FAKE_TOKEN};
    use crate::support::fake_llm::{self, FakeServer};
    let graph = FakeGraph::start().await;
    let attacker = FakeServer::start(|_, _| fake_llm::Reply::text(200, "gotcha")).await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("A cat.")).await;
    let config = ConfigDir::write(
        &Channel::live(graph.base_url(), FAKE_TOKEN),
        &[Agent::assistant(&llm.url).model_name("llava:7b")],
    );
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    graph.add_media(
        "MEDIA9",
        FakeMedia::honest("image/jpeg", b"\xff\xd8\xff\xe0jpeg".to_vec()),
    );
    let planted = format!("{}/steal?media=1", attacker.url);
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Eve"}, "wa_id": "15551230009"}],
        "messages": [{"from": "15551230009", "id": "wamid.planted", "timestamp": "1700000000", "type": "image",
                      "image": {"id": "MEDIA9", "mime_type": "image/jpeg", "url": planted, "link": planted}}]
    }}]}]});
    let status = server
        .post_signed(&serde_json::to_vec(&body).unwrap())
        .await
        .status();
    assert_eq!(status, 200);
    let sends = graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert_eq!(sends.len(), 1, "the image was answered");
    let downloads = graph.requests_under("/media-download/MEDIA9");
    assert_eq!(downloads.len(), 1, "downloaded from the Graph API's URL");
    assert_eq!(
        downloads[0].header("authorization"),
        Some(format!("Bearer {FAKE_TOKEN}").as_str())
    );
    assert_eq!(attacker.count(), 0, "the planted URL was never requested");
}

/// With `app_secret` empty anyone who can reach the port can inject messages: the operator is
/// told loudly at start (a WARN line on stderr) and `/readyz` says `signature_check: false`.
#[tokio::test]
async fn without_an_app_secret_the_server_warns_at_start_and_readyz_says_so() {
    let config = ConfigDir::write(
        &Channel::bare(ASSISTANT),
        &[Agent::assistant("http://127.0.0.1:9")],
    );
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = data.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(["--log-format", "text", "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config.path())
        .arg("--data")
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the wagate binary starts");
    let url = format!("http://127.0.0.1:{port}/readyz");
    let mut ready = None;
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(&url).await {
            ready = response.json::<serde_json::Value>().await.ok();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let ready = ready.expect("the server answered /readyz");
    assert_eq!(ready["signature_check"], false);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let warning = stderr
        .lines()
        .find(|line| line.contains("signatures are NOT checked"))
        .unwrap_or_else(|| panic!("no startup warning in:\n{stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
}
