//! The server under test: its config, the child process, and what /proc says about it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Signing key of the bench's webhooks.
pub const APP_SECRET: &str = "e2e-bench-app-secret";
/// The business number the bench writes to.
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// How the agent is configured. Both on is the realistic default, as in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentShape {
    /// Conversation memory: a sliding window of 10 messages in SQLite.
    pub memory: bool,
    /// PII redaction on input and output, and a length cap on input.
    pub guardrails: bool,
}

impl std::fmt::Display for AgentShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "memory {}, guardrails {}",
            on(self.memory),
            on(self.guardrails)
        )
    }
}

/// Writes `channels.yaml` and one agent file under `dir`.
pub fn write_config(dir: &Path, ollama: SocketAddr, graph: SocketAddr, shape: AgentShape) {
    std::fs::create_dir_all(dir.join("agents")).expect("create the config dir");
    // bench/replicas.sh: fewer turn slots (WAGATE_BENCH_MAX_TURNS), so that replicas run out of
    // them and hint each other.
    let max_turns = std::env::var("WAGATE_BENCH_MAX_TURNS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| format!("    max_concurrent_turns: {n}\n"))
        .unwrap_or_default();
    // The channel cap is lifted: the bench measures wagate, not Meta's messaging limit.
    let channels = format!(
        "channels:
  whatsapp:
    verify_token: e2e-verify
    access_token: EAAG-e2e-bench-token
    phone_number_id: \"{PHONE_NUMBER_ID}\"
    app_secret: {APP_SECRET}
    default_agent: bench
    graph_api_base: http://{graph}
    debounce_ms: 0
    rate_limit:
      window_seconds: 1
      max_messages: 100000
{max_turns}"
    );
    let memory = if shape.memory {
        "  memory:
    conversational:
      backend: sqlite
      strategy: sliding_window
      max_turns: 10
      ttl: 86400
"
    } else {
        ""
    };
    let guardrails = if shape.guardrails {
        "  guardrails:
    input:
      - type: pii_detection
        action: redact
      - type: max_length
        max_chars: 2000
    output:
      - type: pii_detection
        action: redact
"
    } else {
        ""
    };
    let agent = format!(
        "apiVersion: astromesh/v1
kind: Agent
metadata:
  name: bench
spec:
  model:
    primary:
      provider: ollama
      model: \"llama3.1:8b\"
      endpoint: http://{ollama}
      parameters:
        temperature: 0.4
        max_tokens: 256
  prompts:
    system: |
      You are a friendly WhatsApp assistant for a parcel company. You are talking to
      {{{{ contact_name }}}}. Keep answers short and warm. The time is {{{{ now }}}}.
  orchestration:
    pattern: react
    max_iterations: 3
    timeout_seconds: 30
{memory}{guardrails}"
    );
    std::fs::write(dir.join("channels.yaml"), channels).expect("write channels.yaml");
    std::fs::write(dir.join("agents/bench.agent.yaml"), agent).expect("write the agent file");
}

/// The `wagate` binary next to this example's own directory (`target/release/wagate`), or
/// `$WAGATE_BIN`.
pub fn wagate_binary() -> PathBuf {
    if let Ok(path) = std::env::var("WAGATE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("path of this example");
    // target/release/examples/e2e_bench -> target/release/wagate
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("wagate"))
        .expect("a target directory")
}

/// The running server; killed on drop if the bench ends early (a panic), so it never lingers.
pub struct Server(Child);

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `wagate serve` with its log in `log`; on `database` (PostgreSQL) when given, as one
/// replica among those sharing it.
pub fn spawn(
    config: &Path,
    data: &Path,
    listen: SocketAddr,
    log: &Path,
    database: Option<&str>,
) -> Server {
    let binary = wagate_binary();
    let log_file = std::fs::File::create(log).expect("create the server log");
    let mut command = Command::new(&binary);
    if let Some(url) = database {
        command.env("WAGATE_DATABASE_URL", url);
    }
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--listen")
        .arg(listen.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map(Server)
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// A free port on 127.0.0.1 (bound, then released for the child).
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address")
}

/// Waits for `GET /healthz` to answer 200.
pub async fn wait_healthy(client: &reqwest::Client, addr: SocketAddr, server: &mut Server) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            return false;
        }
        let url = format!("http://{addr}/healthz");
        if matches!(client.get(&url).send().await, Ok(r) if r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The server's `/metrics` text (empty if it does not answer).
pub async fn metrics(client: &reqwest::Client, addr: SocketAddr) -> String {
    let url = format!("http://{addr}/metrics");
    match client.get(&url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the inbox holds no open message (none pending, none taken by a turn), so no
/// turn can still send anything (a turn retried after a failure waits up to 30 s). Returns
/// whether it got there before `deadline`.
pub async fn wait_inbox_settled(
    client: &reqwest::Client,
    addr: SocketAddr,
    deadline: Instant,
) -> bool {
    loop {
        let text = metrics(client, addr).await;
        let open = text
            .lines()
            .find_map(|l| l.strip_prefix("wagate_inbox_open_messages "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if open == Some(0.0) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Peak and current resident memory of a process, in kB (`VmHWM`, `VmRSS`).
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis((ticks(14) + ticks(15)) * 10)
}

/// The machine's 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Asks the server to stop (SIGTERM, as systemd would) and waits for it; kills it after 30 s.
pub fn stop(server: &mut Server) -> Option<i32> {
    let child = &mut server.0;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
