//! Context budgets: conversations that outgrow a model's context keep being answered, and one
//! conversation's too-long request never costs another conversation its answer.

use super::harness::{agent, answer, failure, ollama_model, Harness};
use crate::support::fake_llm::{
    messages_of, ollama_says, openai_says, FakeServer, Recorded, Reply,
};
use crate::support::Model;
use serde_json::json;

/// A model entry for an OpenAI-compatible server (llama.cpp's `llama-server`) at `url`.
fn llama_cpp_model(url: &str) -> Model {
    Model::openai(&format!("{url}/v1"), "smollm2").timeout_seconds(30)
}

/// The characters of every message content of a chat request.
fn prompt_chars(request: &Recorded) -> usize {
    messages_of(request)
        .iter()
        .map(|m| m["content"].as_str().map_or(0, str::len))
        .sum()
}

/// A fake llama-server with a context of `n_ctx` tokens, counting 4 characters a token (English
/// text): too long a prompt gets llama.cpp's own 400 answer.
fn llama_server(n_ctx: usize) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    move |request, _| match request.uri.as_str() {
        "/v1/models" => Reply::json(json!({"object": "list", "data": [{
            "id": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
            "object": "model",
            "meta": {"n_ctx": n_ctx, "n_ctx_train": 8192}
        }]})),
        "/v1/chat/completions" => {
            let tokens = prompt_chars(request) / 4;
            if tokens > n_ctx {
                Reply::status(
                    400,
                    json!({"error": {
                        "code": 400,
                        "message": format!("request ({tokens} tokens) exceeds the available context size ({n_ctx} tokens), try increasing it"),
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": tokens,
                        "n_ctx": n_ctx
                    }}),
                )
            } else {
                openai_says("noted")
            }
        }
        _ => Reply::text(404, "File Not Found"),
    }
}

fn chat_requests(server: &FakeServer) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.uri.ends_with("/chat/completions"))
        .collect()
}

#[tokio::test]
async fn a_conversation_that_outgrows_the_context_keeps_being_answered() {
    let server = FakeServer::start(llama_server(2048)).await;
    let harness = Harness::start(
        agent(llama_cpp_model(&server.url))
            .system_prompt("You are the shop's assistant.")
            .memory(200, None),
    );
    let long =
        "I would like to know more about the blue ceramic teapot and the matching cups. ".repeat(8);

    for turn in 1..=30 {
        let result = harness
            .say("wa_1", turn, &format!("question {turn}: {long}"))
            .await;
        assert_eq!(answer(&result), "noted", "turn {turn}");
    }

    let requests = chat_requests(&server);
    assert_eq!(requests.len(), 30, "never refused, never sent twice");
    let last = messages_of(requests.last().unwrap());
    assert_eq!(last[0]["content"], "You are the shop's assistant.");
    assert!(last.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .starts_with("question 30:"));
    assert!(last.len() < 60, "the oldest history was left out");
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.uri == "/v1/models")
            .count()
            == 1,
        "the window is asked once"
    );
}

#[tokio::test]
async fn a_small_request_is_sent_without_asking_the_server_its_window() {
    let server = FakeServer::start(llama_server(2048)).await;
    let harness = Harness::start(agent(llama_cpp_model(&server.url)));

    answer(&harness.say("wa_1", 1, "hello").await);

    let uris: Vec<String> = server.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/v1/chat/completions"]);
}

#[tokio::test]
async fn a_server_that_still_finds_the_request_too_long_gets_it_again_with_less_history() {
    // The agent file claims a larger window than the server has (a common mistake): the
    // server's context-exceeded answer makes wagate send less history, and the turn is answered.
    let server = FakeServer::start(llama_server(1024)).await;
    let harness =
        Harness::start(agent(llama_cpp_model(&server.url).context_window(32768)).memory(100, None));
    let long = "Tell me about shipping times to the north of the country. ".repeat(10);

    for turn in 1..=12 {
        let result = harness.say("wa_1", turn, &format!("{turn}: {long}")).await;
        assert_eq!(answer(&result), "noted", "turn {turn}");
    }
    let requests = chat_requests(&server);
    let last = messages_of(requests.last().unwrap());
    assert!(last.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .starts_with("12:"));
    assert!(prompt_chars(requests.last().unwrap()) / 4 <= 1024);
}

#[tokio::test]
async fn one_conversations_refused_requests_never_open_the_circuit_for_another() {
    let server = FakeServer::start(|request, _| {
        let poisoned = messages_of(request)
            .iter()
            .any(|m| m["content"].as_str().unwrap_or_default().contains("poison"));
        if poisoned {
            Reply::status(
                400,
                json!({"error": {"message": "invalid message", "type": "invalid_request_error"}}),
            )
        } else {
            openai_says("hello there")
        }
    })
    .await;
    let harness = Harness::start(agent(llama_cpp_model(&server.url)));

    for turn in 1..=5 {
        let error = failure(&harness.say("wa_a", turn, "poison pill").await);
        assert!(error.contains("invalid message"), "{error}");
        assert!(!error.contains("circuit"), "{error}");
    }
    let other = harness.say("wa_b", 100, "hi, one line").await;
    assert_eq!(answer(&other), "hello there");
}

#[tokio::test]
async fn ollama_is_told_the_window_so_it_never_truncates_the_prompt_silently() {
    let server = FakeServer::start(|_, _| ollama_says("ok")).await;
    let model = ollama_model(&server.url, "llama3.1:8b").context_window(4096);
    let harness = Harness::start(agent(model));

    answer(&harness.say("wa_1", 1, "hello").await);

    let body = server.requests()[0].json();
    assert_eq!(body["options"]["num_ctx"], 4096, "{body}");
}

#[tokio::test]
async fn ollama_reports_its_window_in_api_show_when_a_request_could_need_it() {
    let server = FakeServer::start(|request, _| match request.uri.as_str() {
        "/api/show" => Reply::json(json!({
            "parameters": "num_ctx 2048",
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            "capabilities": ["completion", "tools"]
        })),
        _ => ollama_says("ok"),
    })
    .await;
    let harness = Harness::start(agent(ollama_model(&server.url, "llama3.1:8b")).memory(100, None));
    let long = "A long question about returns and refunds for damaged goods. ".repeat(10);

    for turn in 1..=10 {
        answer(&harness.say("wa_1", turn, &format!("{turn}: {long}")).await);
    }

    let chats: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.uri == "/api/chat")
        .collect();
    let last = chats.last().unwrap().json();
    assert_eq!(last["options"]["num_ctx"], 2048, "{last}");
    assert!(prompt_chars(chats.last().unwrap()) / 3 < 2048);
}
