//! Hot reload: edits apply to the next turn, bad edits are refused, running turns keep theirs.

use crate::support::fake_graph::FakeGraph;
use crate::support::fake_llm::{self, FakeServer};
use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn generation(server: &TestServer) -> u64 {
    let ready: serde_json::Value = server.get("/readyz").await.json().await.unwrap();
    ready["config_generation"].as_u64().unwrap()
}

async fn wait_for_generation(server: &TestServer, wanted: u64) -> bool {
    for _ in 0..100 {
        if generation(server).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn system_prompt(request: &fake_llm::Recorded) -> String {
    fake_llm::messages_of(request)[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_edited_agent_file_applies_to_the_next_turn_without_a_restart() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("hi")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    server
        .post_signed(&text_body(&[("wamid.rl.1", "15551231001", "one")]))
        .await;
    graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert!(system_prompt(&llm.requests()[0]).contains("You are whatsapp-assistant"));

    config.write_agent(&Agent::assistant(&llm.url).system_prompt("You are the NEW prompt."));
    assert!(
        wait_for_generation(&server, 2).await,
        "the edit was picked up"
    );

    server
        .post_signed(&text_body(&[("wamid.rl.2", "15551231001", "two")]))
        .await;
    graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    assert!(system_prompt(&llm.requests()[1]).contains("You are the NEW prompt."));
    assert!(
        server
            .wait_for_metric("wagate_config_reloads_total{outcome=\"applied\"} 1", 2)
            .await
    );
}

#[tokio::test]
async fn an_invalid_edit_is_refused_and_the_previous_config_stays_in_force() {
    let graph = FakeGraph::start().await;
    let llm = FakeServer::start(|_, _| fake_llm::ollama_says("still here")).await;
    let config = ConfigDir::live(graph.base_url(), &llm.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    config.write_agent(
        &Agent::assistant(&llm.url).edit_model(|m| m.set("provider", json!("telepathy"))),
    );
    assert!(
        server
            .wait_for_metric("wagate_config_reloads_total{outcome=\"rejected\"} 1", 5)
            .await
    );
    assert_eq!(generation(&server).await, 1);

    server
        .post_signed(&text_body(&[("wamid.rl.bad", "15551231002", "hello")]))
        .await;
    let sends = graph.wait_for_text_sends(1, Duration::from_secs(10)).await;
    assert_eq!(
        sends[0].body["text"]["body"], "still here",
        "the old agent still answers"
    );
}

#[tokio::test]
async fn a_turn_running_during_a_reload_finishes_with_the_config_it_started_with() {
    let graph = FakeGraph::start().await;
    let old_model = FakeServer::start(|_, _| {
        fake_llm::ollama_says("from the old model").after(Duration::from_millis(1500))
    })
    .await;
    let new_model = FakeServer::start(|_, _| fake_llm::ollama_says("from the new model")).await;
    let config = ConfigDir::live(graph.base_url(), &old_model.url, |c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;

    server
        .post_signed(&text_body(&[("wamid.rl.run", "15551231003", "first")]))
        .await;
    assert!(
        eventually(5, || old_model.count() == 1).await,
        "the first turn is running"
    );
    config.write_agent(&Agent::assistant(&new_model.url));
    assert!(wait_for_generation(&server, 2).await);

    server
        .post_signed(&text_body(&[("wamid.rl.next", "15551231004", "second")]))
        .await;
    let sends = graph.wait_for_text_sends(2, Duration::from_secs(10)).await;
    let reply_to = |id: &str| {
        sends
            .iter()
            .find(|s| s.body["context"]["message_id"] == id)
            .map(|s| s.body["text"]["body"].clone())
    };
    assert_eq!(reply_to("wamid.rl.run").unwrap(), "from the old model");
    assert_eq!(reply_to("wamid.rl.next").unwrap(), "from the new model");
    assert_eq!(old_model.count(), 1);
}

/// Writes a config generation into `dir`: `channel` with `default_agent: <agent>` and only
/// that agent.
fn write_generation(dir: &std::path::Path, channel: &Channel, agent: &str, llm: &str) {
    let channel = channel.clone().set("default_agent", json!(agent));
    crate::support::config::write_dir(dir, &channel, &[Agent::named_assistant(agent, llm)]);
}

mod race {
    use super::*;
    pub use wagate::inbox::store::{Batch, Durability, InboundState, NewInbound};
    pub use wagate::inbox::{LaneKey, Store, TurnHandler};
    pub use wagate::live_config::SharedConfig;
    pub use wagate::memory::Memory;
    pub use wagate::metrics::Metrics;
    pub use wagate::reload::Reloader;
    pub use wagate::responder::{EngineFactory, Responder};
    pub use wagate::transcription::Transcriber;

    pub struct Race {
        pub graph: FakeGraph,
        pub _llm: FakeServer,
        pub root: tempfile::TempDir,
        pub alpha: std::path::PathBuf,
        pub beta: std::path::PathBuf,
        pub live: std::path::PathBuf,
        pub _data: tempfile::TempDir,
        pub store: Store,
        pub shared: SharedConfig,
        pub responder: Arc<Responder>,
        pub reloader: Reloader,
    }

    /// A responder and reloader wired as `serve` wires them, on a config directory `live`
    /// (a symlink) that points at generation `alpha` (agent alpha) or `beta` (agent beta).
    pub async fn setup() -> Race {
        let graph = FakeGraph::start().await;
        let llm = FakeServer::start(|_, _| fake_llm::ollama_says("fine")).await;
        // Unsigned (no app secret): the tests here drive the responder, not the webhook.
        let channel = Channel::live(graph.base_url(), crate::support::fake_graph::FAKE_TOKEN)
            .unset("app_secret")
            .error_reply("ERROR-REPLY")
            .rate_limit(1, 100_000);
        // Two generations that differ in which agent exists: a turn pairing one generation's
        // config with the other's engines asks for an agent the engines do not have.
        let root = tempfile::tempdir().unwrap();
        let (alpha, beta, live) = (
            root.path().join("alpha"),
            root.path().join("beta"),
            root.path().join("live"),
        );
        write_generation(&alpha, &channel, "alpha", &llm.url);
        write_generation(&beta, &channel, "beta", &llm.url);
        std::os::unix::fs::symlink(&alpha, &live).unwrap();

        let data = tempfile::tempdir().unwrap();
        let store = Store::open(data.path(), Durability::Normal).unwrap();
        let metrics = Arc::new(Metrics::new());
        let http = reqwest::Client::new();
        let shared = SharedConfig::new(wagate::config::Config::load(&live).unwrap());
        let responder = Arc::new(
            Responder::new(
                shared.clone(),
                store.clone(),
                Arc::clone(&metrics),
                Transcriber::new(http.clone(), Arc::clone(&metrics)),
                EngineFactory {
                    memory: Memory::open(store.path()).unwrap(),
                    metrics: Arc::clone(&metrics),
                    http,
                    graph_options: crate::support::fake_graph::fast_options(),
                },
            )
            .unwrap(),
        );
        let reloader = Reloader::new(
            live.clone(),
            None,
            shared.clone(),
            Some(Arc::clone(&responder)),
            metrics,
        );

        Race {
            graph,
            _llm: llm,
            root,
            alpha,
            beta,
            live,
            _data: data,
            store,
            shared,
            responder,
            reloader,
        }
    }

    /// One message from `user`, answered as one turn by the responder.
    pub async fn one_turn(race: &Race, user: &str, id: &str) {
        let lane = LaneKey {
            phone_number_id: PHONE_NUMBER_ID.into(),
            user: user.into(),
        };
        race.store
            .record(Batch {
                messages: vec![NewInbound {
                    message_id: id.into(),
                    lane: lane.clone(),
                    display_phone_number: String::new(),
                    contact_name: None,
                    kind: "text".into(),
                    timestamp: chrono::Utc::now().timestamp(),
                    raw: r#"{"type":"text","text":{"body":"hi"}}"#.into(),
                    json: None,
                    state: InboundState::Pending,
                    note: None,
                }],
                ..Batch::default()
            })
            .await
            .unwrap();
        let turn = race.store.claim_turn(lane).await.unwrap().unwrap();
        let id = turn.id;
        let outcome = race.responder.handle(turn).await;
        race.store.finish_turn(id, outcome).await.unwrap();
    }

    pub fn error_replies(graph: &FakeGraph) -> usize {
        graph
            .text_sends()
            .iter()
            .filter(|s| s.body["text"]["body"] == "ERROR-REPLY")
            .count()
    }
}

#[tokio::test]
async fn a_turn_starting_between_the_config_swap_and_the_engines_swap_uses_one_generation() {
    let race = race::setup().await;
    // The reload's first step: the shared config (what HTTP reads) is already the new one.
    race.shared
        .replace(wagate::config::Config::load(&race.beta).unwrap());
    race::one_turn(&race, "15550000001", "wamid.between.1").await;
    assert_eq!(
        race::error_replies(&race.graph),
        0,
        "the turn paired the new config (agent beta) with the old engines (agent alpha)"
    );
    assert_eq!(race.graph.text_sends()[0].body["text"]["body"], "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn turns_racing_reloads_always_run_with_config_and_engines_of_one_generation() {
    let race = Arc::new(race::setup().await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let turns: Vec<_> = (0..6)
        .map(|lane| {
            let (race, stop) = (Arc::clone(&race), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let (user, id) = (
                        format!("1555000{lane:04}"),
                        format!("wamid.race.{lane}.{n}"),
                    );
                    race::one_turn(&race, &user, &id).await;
                }
                n
            })
        })
        .collect();

    for flip in 0..150 {
        let target = if flip % 2 == 0 {
            &race.beta
        } else {
            &race.alpha
        };
        let next = race.root.path().join("next");
        std::os::unix::fs::symlink(target, &next).unwrap();
        std::fs::rename(&next, &race.live).unwrap();
        race.reloader
            .reload("test")
            .await
            .expect("each generation is valid");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    for turn in turns {
        answered += turn.await.unwrap();
    }

    let sends = race.graph.text_sends().len();
    assert!(
        answered >= 6 && sends >= answered,
        "turns {answered}, sends {sends}"
    );
    let errors = race::error_replies(&race.graph);
    assert_eq!(
        errors, 0,
        "{errors} of {sends} turns ran with a config and engines of different generations"
    );
}
