//! End-to-end benchmark (issue 4, "Speed"): webhook received → reply accepted by Meta.
//!
//! One process runs a fake Ollama that answers at once and a fake Graph API, starts the real
//! `target/release/wagate serve` against them as a child process, and posts signed text-message
//! webhooks in an open loop at a fixed rate from many users. Each message's latency runs from
//! its *scheduled* send instant to the fake Graph receiving the reply that quotes it, so it
//! covers the webhook, the inbox commit, the dispatcher, the turn with the model, and the send.
//! It also checks that every message is answered exactly once, by the right number, and reports
//! the server's peak RSS.
//!
//!     cargo build --release --bin wagate --example e2e_bench
//!     target/release/examples/e2e_bench [RATE] [SECONDS] [USERS] [--no-memory] [--no-guardrails] [--lean] [--sample=FILE.csv]
//!
//! Defaults: 500 messages/s for 30 s from 500 users, agent with memory and PII guardrails.
//! `--no-memory`, `--no-guardrails` and `--lean` (both) take those away to see what they cost. `WAGATE_BIN` overrides the server binary's path.
//! `--sample=FILE.csv` records the server's RSS and open file descriptors every 10 s into the file
//! (`bench/soak.sh`) and prints first, max, last and slope at the end.
//! `--replicas=N` starts N servers and posts to each in turn (a round-robin balancer);
//! `--database=URL` puts them on that PostgreSQL database (empty: the servers must not share
//! it, so N > 1 needs it). `bench/replicas.sh` runs both. The last line, `SUMMARY ...`, is for
//! scripts.
//! Exit code 1 when exactly-once fails (a duplicate, a missing reply, a wrong recipient, or a
//! webhook not answered 200).

#[path = "e2e_bench/fakes.rs"]
mod fakes;
#[path = "e2e_bench/load.rs"]
mod load;
#[path = "e2e_bench/report.rs"]
mod report;
#[path = "e2e_bench/sampler.rs"]
mod sampler;
#[path = "e2e_bench/server.rs"]
mod server;
#[path = "e2e_bench/tally.rs"]
mod tally;

use report::{between, since_send, Latencies};
use server::AgentShape;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::{Stage, Tally};

/// How long to wait for the last replies after the last webhook.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait, after that, for the inbox to hold no open message.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Extra wait once the inbox is settled, so a send in flight would still be seen.
const DUPLICATE_GRACE: Duration = Duration::from_secs(1);
/// How often `--sample` reads the server's RSS and descriptors.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

struct Args {
    rate: f64,
    seconds: f64,
    users: usize,
    shape: AgentShape,
    /// `--sample=FILE.csv`: where to write RSS and descriptor samples.
    sample: Option<String>,
    /// `--replicas=N`: servers sharing the load (and `database`).
    replicas: usize,
    /// `--database=URL`: PostgreSQL instead of each server's SQLite.
    database: Option<String>,
}

fn parse_args() -> Args {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| all.iter().any(|a| a == name);
    let lean = flag("--lean");
    let numbers: Vec<&String> = all.iter().filter(|a| !a.starts_with("--")).collect();
    let number = |n: usize, default: f64| -> f64 {
        numbers.get(n).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("usage: e2e_bench [RATE] [SECONDS] [USERS] [--lean | --no-memory | --no-guardrails] [--sample=FILE.csv] [--replicas=N --database=URL]");
                std::process::exit(2)
            })
        })
    };
    Args {
        rate: number(0, 500.0),
        seconds: number(1, 30.0),
        users: number(2, 500.0).max(1.0) as usize,
        shape: AgentShape {
            memory: !lean && !flag("--no-memory"),
            guardrails: !lean && !flag("--no-guardrails"),
        },
        sample: all
            .iter()
            .find_map(|a| a.strip_prefix("--sample="))
            .map(str::to_owned),
        replicas: all
            .iter()
            .find_map(|a| a.strip_prefix("--replicas="))
            .map_or(1, |n| n.parse().unwrap_or(1))
            .max(1),
        database: all
            .iter()
            .find_map(|a| a.strip_prefix("--database="))
            .filter(|url| !url.is_empty())
            .map(str::to_owned),
    }
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    // One worker each: the bench shares two cores with the server it measures.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn main() -> ExitCode {
    let args = parse_args();
    if args.replicas > 1 && args.database.is_none() {
        eprintln!(
            "--replicas=N over 1 needs --database=URL (PostgreSQL): replicas share one database"
        );
        return ExitCode::from(2);
    }
    let messages = (args.rate * args.seconds).round() as usize;
    let tally = Arc::new(Tally::new(messages, args.users, Instant::now()));
    let work = tempfile::tempdir().expect("a temporary directory");
    let config_dir = work.path().join("config");

    let fakes_rt = runtime("fakes");
    let (ollama, graph) = fakes_rt.block_on(fakes::start(Arc::clone(&tally)));
    server::write_config(&config_dir, ollama, graph, args.shape);
    let listens: Vec<_> = (0..args.replicas).map(|_| server::free_port()).collect();
    let logs: Vec<_> = (0..args.replicas)
        .map(|k| work.path().join(format!("server-{k}.log")))
        .collect();
    let mut children: Vec<_> = listens
        .iter()
        .zip(&logs)
        .enumerate()
        .map(|(k, (listen, log))| {
            let data = work.path().join(format!("data-{k}"));
            server::spawn(&config_dir, &data, *listen, log, args.database.as_deref())
        })
        .collect();
    let listen = listens[0];
    let pids: Vec<u32> = children.iter().map(server::Server::pid).collect();
    let pid = pids[0];

    let client_rt = runtime("client");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("an HTTP client");
    for (k, child) in children.iter_mut().enumerate() {
        if !client_rt.block_on(server::wait_healthy(&client, listens[k], child)) {
            eprintln!(
                "server {k} did not become healthy; its log:\n{}",
                std::fs::read_to_string(&logs[k]).unwrap_or_default()
            );
            children.iter_mut().for_each(|c| {
                server::stop(c);
            });
            return ExitCode::FAILURE;
        }
    }

    let webhooks = load::build(&tally);
    println!(
        "e2e_bench: {} msg/s for {} s from {} users ({messages} messages), agent with {}, server {}, {} replica(s) on {}",
        args.rate,
        args.seconds,
        args.users,
        args.shape,
        server::wagate_binary().display(),
        args.replicas,
        if args.database.is_some() { "PostgreSQL" } else { "SQLite" },
    );
    println!(
        "load average before: {}, cores: {}",
        server::load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let sampler = args.sample.as_deref().map(|path| {
        sampler::Sampler::start(pid, path, SAMPLE_EVERY)
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"))
    });
    let cpu_of_all = || pids.iter().map(|p| server::cpu_time(*p)).sum::<Duration>();
    let cpu_before = cpu_of_all();
    let start = Instant::now() + Duration::from_millis(200);
    // The same instant on the wall clock, to line a slow second up with the server's logs.
    let start_wall = std::time::SystemTime::now() + Duration::from_millis(200);
    let urls: Vec<String> = listens
        .iter()
        .map(|l| format!("http://{l}/v1/channels/whatsapp/webhook"))
        .collect();
    let lateness = load::run(
        &client_rt, &client, &urls, webhooks, &tally, start, args.rate,
    );
    let sending = start.elapsed();
    let load_during = server::load_average();

    // Drain: every accepted webhook should get its reply. Then wait until the inbox has no
    // open message, so a turn retried after a failure (30 s later) is seen if it sends again.
    let accepted = tally.webhook_ok.load(Ordering::Relaxed) as usize;
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while tally.answered() < accepted && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let last_reply_after = start.elapsed();
    let cpu_used = cpu_of_all().saturating_sub(cpu_before);
    let settle_deadline = Instant::now() + SETTLE_TIMEOUT;
    let settled = client_rt.block_on(server::wait_inbox_settled(&client, listen, settle_deadline));
    let settle_wait = start.elapsed() - last_reply_after;
    std::thread::sleep(DUPLICATE_GRACE);
    let (peak_kb, rss_kb) = pids
        .iter()
        .map(|p| server::memory_kb(*p))
        .fold((0, 0), |(a, b), (c, d)| (a.max(c), b.max(d)));
    let samples = sampler.map(sampler::Sampler::finish);
    let metrics = client_rt.block_on(server::metrics(&client, listen));
    let exit_codes: Vec<_> = children.iter_mut().map(server::stop).collect();
    let exit_code = exit_codes[0];

    // ---- report ----
    let d = report::delivery(&tally);
    let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let wrong = count(&tally.wrong_recipient);
    let unknown = count(&tally.unknown_replies);
    let not_ok = count(&tally.webhook_rejected) + count(&tally.webhook_errors);
    println!(
        "sent {messages} in {:.2} s (pacer worst lateness {:.2} ms); webhooks 200: {}, other status: {}, transport errors: {}",
        sending.as_secs_f64(),
        lateness.as_secs_f64() * 1e3,
        count(&tally.webhook_ok),
        count(&tally.webhook_rejected),
        count(&tally.webhook_errors),
    );
    println!(
        "messages answered exactly once {} (of which {} together with a later message of the same user, {} after the model was asked again), duplicated {} (reply sent twice: {}), missing {}, misquoted {}; replies to a wrong recipient {wrong}, quoting no message of this run {unknown}; last reply {:.2} s after start",
        d.answered_once,
        d.batched,
        d.model_asked_again,
        d.duplicated,
        d.reply_sent_twice,
        d.missing,
        d.misquoted,
        last_reply_after.as_secs_f64(),
    );
    println!(
        "inbox settled (no open message) {:.1} s after that{}",
        settle_wait.as_secs_f64(),
        if settled {
            ""
        } else {
            ": NOT settled at the deadline, duplicates may be undercounted"
        }
    );
    println!(
        "webhook statuses {:?}; read receipts {}, model calls {}",
        tally.webhook_statuses(),
        count(&tally.read_receipts),
        count(&tally.model_calls)
    );
    println!("{}", report::HEADER);
    let headline = since_send(&tally, start, args.rate, Stage::ReplyAccepted);
    let rows: [(&str, Latencies); 6] = [
        (
            "send → webhook 200",
            since_send(&tally, start, args.rate, Stage::WebhookAnswered),
        ),
        (
            "send → read receipt at Graph",
            since_send(&tally, start, args.rate, Stage::ReadReceipt),
        ),
        (
            "send → request at model",
            since_send(&tally, start, args.rate, Stage::ModelCalled),
        ),
        (
            "webhook 200 → request at model",
            between(&tally, Stage::WebhookAnswered, Stage::ModelCalled),
        ),
        (
            "request at model → reply at Graph",
            between(&tally, Stage::ModelCalled, Stage::ReplyAccepted),
        ),
        ("send → reply at Graph (END TO END)", headline),
    ];
    for (name, latencies) in &rows {
        println!("{}", latencies.line(name));
    }
    let headline = &rows[5].1;
    let slices = report::by_slice(&tally, start, args.rate, 6);
    let shown = |slices: &[(f64, f64)]| {
        slices
            .iter()
            .map(|(p50, p99)| format!("{p50:.1}/{p99:.1}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!(
        "end to end by sixth of the run, p50/p99 ms: {}",
        shown(&slices)
    );
    // A fresh server and database warm up in the first seconds: shown apart.
    let seconds = report::by_slice(
        &tally,
        start,
        args.rate,
        args.seconds.round().max(1.0) as usize,
    );
    println!(
        "end to end in each of the first 5 seconds, p50/p99 ms: {}",
        shown(&seconds[..seconds.len().min(5)])
    );
    let since_midnight = start_wall
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 86_400)
        .unwrap_or(0);
    println!(
        "end to end p99 ms in each second from {:02}:{:02}:{:02} UTC: {}",
        since_midnight / 3600,
        since_midnight / 60 % 60,
        since_midnight % 60,
        seconds
            .iter()
            .map(|(_, p99)| format!("{p99:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "server{}: peak RSS {:.1} MB, RSS at end {:.1} MB, CPU {:.1} s ({:.0}% of one core over the run), exit code {:?}",
        if pids.len() > 1 { "s (largest RSS, CPU summed)" } else { "" },
        peak_kb as f64 / 1024.0,
        rss_kb as f64 / 1024.0,
        cpu_used.as_secs_f64(),
        100.0 * cpu_used.as_secs_f64() / last_reply_after.as_secs_f64().max(1e-9),
        if exit_codes.len() > 1 { format!("{exit_codes:?}") } else { format!("{exit_code:?}") },
    );
    println!(
        "load average at end of sending: {load_during}, after: {}",
        server::load_average()
    );
    for line in report::interesting_metrics(&metrics) {
        println!("  {line}");
    }
    if let (Some(samples), Some(path)) = (&samples, &args.sample) {
        println!(
            "server RSS and open file descriptors every {} s ({path}):",
            SAMPLE_EVERY.as_secs()
        );
        for line in sampler::summary(samples) {
            println!("  {line}");
        }
    }

    let exactly_once = d.exactly_once() && wrong == 0 && unknown == 0 && not_ok == 0 && settled;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let (p50, p99) = (headline.percentile(50.0), headline.percentile(99.0));
    println!(
        "targets: exactly once {}; p50 {:.2} ms < 5 ms {}; p99 {:.2} ms < 50 ms {}; peak RSS {:.1} MB < 60 MB {}",
        verdict(exactly_once),
        p50.as_secs_f64() * 1e3,
        verdict(p50 < Duration::from_millis(5)),
        p99.as_secs_f64() * 1e3,
        verdict(p99 < Duration::from_millis(50)),
        peak_kb as f64 / 1024.0,
        verdict(peak_kb < 60 * 1024),
    );
    let warnings: String = logs
        .iter()
        .map(|log| std::fs::read_to_string(log).unwrap_or_default())
        .collect();
    let summary = report::log_summary(&warnings);
    if !summary.is_empty() {
        println!("server log at warn and above, by message:");
        for (n, message) in summary.iter().take(10) {
            println!("  {n:>6} × {message}");
        }
    }
    // For scripts (bench/replicas.sh): messages answered exactly once per second of the run
    // (from the first webhook to the last reply), and the end-to-end percentiles.
    println!(
        "SUMMARY replicas={} database={} answered_once={} per_second={:.1} p50_ms={:.2} p99_ms={:.2} exactly_once={}",
        args.replicas,
        if args.database.is_some() { "postgres" } else { "sqlite" },
        d.answered_once,
        d.answered_once as f64 / last_reply_after.as_secs_f64().max(1e-9),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        verdict(exactly_once),
    );
    drop(fakes_rt);
    if exactly_once {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
