//! Lean fakes of Ollama and of Meta's Graph API: real HTTP on 127.0.0.1, answers at once, no
//! logging, no locks (they only write the [`Tally`]'s atomics).

use super::tally::{indexes_in, Stage, Tally};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What the fake model always says (short, with a little Markdown to format).
const ANSWER: &str = "Thanks for writing! **We are on it** and will get back to you shortly.";

/// Starts both fakes on the current runtime; returns (ollama, graph) addresses.
pub async fn start(tally: Arc<Tally>) -> (SocketAddr, SocketAddr) {
    let ollama = Router::new()
        .route("/api/chat", post(chat))
        .with_state(Arc::clone(&tally));
    let graph = Router::new()
        .route("/{version}/{phone_number_id}/messages", post(messages))
        .with_state(tally);
    (serve(ollama).await, serve(graph).await)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a fake server on 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `POST /api/chat`: Ollama's non-streaming answer, at once.
async fn chat(State(tally): State<Arc<Tally>>, body: Bytes) -> Response {
    let arrived = Instant::now();
    tally.model_calls.fetch_add(1, Ordering::Relaxed);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("bench").to_owned();
    // The turn's new input is the last user message (older ones are memory); its tags say
    // which messages the turn answers (several when a user wrote again while a turn ran).
    let last_user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str());
    if let Some(text) = last_user {
        tally.asked(&indexes_in(text), arrived);
    }
    let answer = serde_json::json!({
        "model": model,
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": ANSWER},
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": 1,
        "eval_count": 1,
    });
    json(answer.to_string())
}

/// `POST /{version}/{phone_number_id}/messages`: a read receipt or a text send.
async fn messages(State(tally): State<Arc<Tally>>, body: Bytes) -> Response {
    let arrived = Instant::now();
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "not JSON").into_response(),
    };
    if request["status"] == "read" {
        tally.read_receipts.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = request["message_id"]
            .as_str()
            .and_then(|id| tally.index_of(id))
        {
            tally.mark(Stage::ReadReceipt, i, arrived);
        }
        return json(r#"{"success":true}"#.to_owned());
    }
    let to = request["to"].as_str().unwrap_or_default().to_owned();
    match request["context"]["message_id"]
        .as_str()
        .and_then(|id| tally.index_of(id))
    {
        Some(i) => tally.reply(i, &to, arrived),
        None => {
            tally.unknown_replies.fetch_add(1, Ordering::Relaxed);
        }
    }
    let n = tally.out_ids.fetch_add(1, Ordering::Relaxed);
    json(format!(
        r#"{{"messaging_product":"whatsapp","contacts":[{{"input":"{to}","wa_id":"{to}"}}],"messages":[{{"id":"wamid.out.{n}"}}]}}"#
    ))
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
