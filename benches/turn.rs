//! The agent runtime's own overhead per turn, against an in-process fake Ollama that answers at
//! once. Run with `cargo bench --bench turn`.
//!
//! Each turn carries a 2 KB message with an e-mail address and a phone number, through input and
//! output PII guardrails, a memory window of 30 messages (loaded and appended every turn, SQLite
//! file in a temp dir), the system prompt, and the context budget (every message's tokens
//! estimated and the request fitted to a 32,768-token window, which holds all 30). The same requests are then replayed as bare HTTP
//! calls to the fake, so `overhead = turn - bare call` is what wagate adds around the model call.
//! Target: overhead median under 1 ms.

use axum::body::Bytes;
use axum::routing::post;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wagate::agent::input::ResolvedPart;
use wagate::agent::runtime::{AgentRuntime, TurnAnswer, TurnRequest};
use wagate::config::Config;
use wagate::memory::Memory;

const TURNS: usize = 2000;
const WARM_UP: usize = 100;

const REPLY: &str = r#"{"model":"fake","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Thanks! Your order left the warehouse this morning and should arrive tomorrow. Anything else I can help with?"},"done":true,"done_reason":"stop","prompt_eval_count":512,"eval_count":24}"#;

/// A fake Ollama `/api/chat` that keeps the last request body (for the bare-call replay).
async fn start_fake() -> (String, Arc<Mutex<Bytes>>) {
    let last = Arc::new(Mutex::new(Bytes::new()));
    let keep = Arc::clone(&last);
    let app = axum::Router::new().route(
        "/api/chat",
        post(move |body: Bytes| {
            let keep = Arc::clone(&keep);
            async move {
                *keep.lock().expect("last body lock") = body;
                ([("content-type", "application/json")], REPLY)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, last)
}

fn write_config(dir: &std::path::Path, model_url: &str) -> std::path::PathBuf {
    let config = dir.join("config");
    std::fs::create_dir_all(config.join("agents")).expect("config dir");
    std::fs::write(
        config.join("channels.yaml"),
        "channels:\n  whatsapp:\n    default_agent: bench\n",
    )
    .expect("channels.yaml");
    let agent = format!(
        "apiVersion: astromesh/v1
kind: Agent
metadata:
  name: bench
spec:
  model:
    primary: {{provider: ollama, model: 'llama3.1:8b', endpoint: '{model_url}', context_window: 32768}}
  prompts:
    system: |
      You are the assistant of a small shop. You talk to {{{{ contact_name }}}} ({{{{ phone }}}}).
      Today is {{{{ now }}}}. Be brief and friendly; answer in the user's language.
  orchestration: {{max_iterations: 5, timeout_seconds: 30}}
  memory:
    conversational: {{max_turns: 30, ttl: 86400}}
  guardrails:
    input:
      - type: pii_detection
        action: redact
      - type: max_length
        max_chars: 4000
    output:
      - type: pii_detection
        action: redact
"
    );
    std::fs::write(config.join("agents/bench.agent.yaml"), agent).expect("agent file");
    config
}

/// About 2 KB of a customer's message, with an e-mail address and a phone number.
fn message() -> String {
    let opening = "Hello, this is Ana Souza, you can reach me at ana.souza@example.com or on \
        +55 11 99999-9999. ";
    let filler = "I ordered a blue ceramic teapot and two matching cups last week, order \
        ORD-2024-001234, and the tracking page still says it is being prepared. ";
    let mut text = opening.to_owned();
    while text.len() < 2048 {
        text.push_str(filler);
    }
    text.truncate(2048);
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let (url, last_body) = start_fake().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::load(&write_config(dir.path(), &url)).expect("config loads");
    let memory = Memory::open(&dir.path().join("wagate.db")).expect("memory");
    let http = reqwest::Client::new();
    let agents = AgentRuntime::build(&config, memory, http.clone()).expect("runtime");
    let text = message();

    let mut turn_times = Vec::with_capacity(TURNS);
    let mut bodies = Vec::with_capacity(TURNS);
    for i in 0..WARM_UP + TURNS {
        let request = TurnRequest {
            memory_key: "wa_5511999999999".into(),
            turn_id: i as i64,
            contact_name: Some("Ana".into()),
            phone: "5511999999999".into(),
            parts: vec![ResolvedPart::Text(text.clone())],
            media: None,
        };
        let started = Instant::now();
        let result = agents.run("bench", request).await;
        let took = started.elapsed();
        assert!(
            matches!(result.outcome, TurnAnswer::Answered(_)),
            "{:?}",
            result.outcome
        );
        if i >= WARM_UP {
            turn_times.push(took);
            bodies.push(last_body.lock().expect("last body lock").clone());
        }
    }

    // The same request bodies, posted bare and the answer read in full.
    let chat_url = format!("{url}/api/chat");
    let mut bare_times = Vec::with_capacity(TURNS);
    for (i, body) in bodies.iter().cycle().take(WARM_UP + TURNS).enumerate() {
        let started = Instant::now();
        let response = http
            .post(&chat_url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("bare call");
        let _ = response.bytes().await.expect("bare body");
        if i >= WARM_UP {
            bare_times.push(started.elapsed());
        }
    }

    turn_times.sort();
    bare_times.sort();
    let turn_median = percentile(&turn_times, 0.5);
    let bare_median = percentile(&bare_times, 0.5);
    let average_body = bodies.iter().map(Bytes::len).sum::<usize>() / bodies.len().max(1);
    println!(
        "agent turn ({TURNS} turns, 2 KB input, PII in+out, memory window 30, context budget, request body ~{} KB)",
        average_body / 1024
    );
    println!(
        "  turn      median {:8.1} µs   p99 {:8.1} µs",
        micros(turn_median),
        micros(percentile(&turn_times, 0.99))
    );
    println!(
        "            p90    {:8.1} µs   p95 {:8.1} µs   max {:8.1} µs",
        micros(percentile(&turn_times, 0.90)),
        micros(percentile(&turn_times, 0.95)),
        micros(percentile(&turn_times, 1.0))
    );
    println!(
        "  bare call median {:8.1} µs   p99 {:8.1} µs",
        micros(bare_median),
        micros(percentile(&bare_times, 0.99))
    );
    println!(
        "  overhead  median {:8.1} µs   (target < 1000 µs)",
        micros(turn_median.saturating_sub(bare_median))
    );
}
