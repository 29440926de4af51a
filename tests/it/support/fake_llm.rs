//! A fake HTTP server for tests: a real axum server on 127.0.0.1, port 0, that records every
//! request it receives and answers through a closure. Used as a fake Ollama, a fake
//! OpenAI-compatible server, or the target of an HTTP tool.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query exactly as sent (percent-encoding intact).
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or(Json::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (to provoke client timeouts).
    pub delay: Duration,
}

impl Reply {
    pub fn json(value: Json) -> Reply {
        Reply::status(200, value)
    }

    pub fn status(status: u16, value: Json) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Responder = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    responder: Arc<Responder>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running fake server; it stops with the test's runtime.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeServer {
    /// Starts a server answering each request with `responder(request, index)`, where `index`
    /// counts requests from 0.
    pub async fn start(
        responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let shared = Shared {
            requests: Arc::new(Mutex::new(Vec::new())),
            responder: Arc::new(responder),
            answered: Arc::default(),
        };
        let requests = shared.requests.clone();
        let answered = shared.answered.clone();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer {
            url,
            requests,
            answered,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests lock").len()
    }

    /// Requests the fake answered: a client that hung up during the reply's `delay` (it gave
    /// the call up) is not counted.
    pub fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        uri: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body,
    };
    let reply = {
        let mut requests = shared.requests.lock().expect("requests lock");
        let index = requests.len();
        requests.push(recorded.clone());
        (shared.responder)(&recorded, index)
    };
    if !reply.delay.is_zero() {
        // Dropped here (by the server) when the client hangs up meanwhile.
        tokio::time::sleep(reply.delay).await;
    }
    shared
        .answered
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("valid status"));
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(reply.body))
        .expect("valid response")
}

/// Ollama `/api/chat` answering in text.
pub fn ollama_says(text: &str) -> Reply {
    Reply::json(json!({
        "model": "fake",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": 11,
        "eval_count": 7
    }))
}

/// Ollama `/api/chat` calling one tool (arguments as an object, `done_reason` still "stop").
pub fn ollama_calls(name: &str, arguments: Json) -> Reply {
    Reply::json(json!({
        "model": "fake",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": name, "arguments": arguments}}]
        },
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": 11,
        "eval_count": 7
    }))
}

/// OpenAI `/chat/completions` answering in text.
pub fn openai_says(text: &str) -> Reply {
    Reply::json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18}
    }))
}

/// OpenAI `/chat/completions` calling one tool; `arguments` is the raw JSON string.
pub fn openai_calls(id: &str, name: &str, arguments: &str) -> Reply {
    Reply::json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments}
                }]
            },
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18}
    }))
}

/// The messages of a recorded chat request.
pub fn messages_of(request: &Recorded) -> Vec<Json> {
    request.json()["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
