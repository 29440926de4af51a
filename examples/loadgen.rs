//! Webhook intake benchmark helper (BENCHMARKS.md, "Webhook intake"), two modes:
//!
//! `loadgen URL BODIES_FILE RATE SECONDS`: open-loop load. Sends pre-signed webhook bodies at a
//! FIXED rate, whatever the server does, and measures each request's latency from the moment it
//! was scheduled (so a stalled server cannot hide its stall, unlike a closed loop).
//! BODIES_FILE holds `<signature>\t<body>` lines (bench/gen_bodies.py); `-` reads them from
//! standard input.
//!
//! `loadgen serve CONFIG_DIR DATA_DIR LISTEN [normal]`: the real server (`wagate::server::run`:
//! same router, inbox, group commit and dispatcher as `wagate serve`) with the log-only turn
//! handler, so the benchmark measures intake plus the dispatcher's claim/finish per turn, not
//! the agent or the Graph API. `normal` opts into `synchronous=NORMAL` (default FULL).
//! `LOADGEN_TURN_HOLD_MS` makes each turn take that long before it closes (default 0): with a
//! long hold every turn slot stays busy and the rest of the work waits in the store, which is
//! what `bench/backlog.sh` measures the memory of. With `WAGATE_DATABASE_URL` set, the server
//! stores everything in that PostgreSQL database instead of DATA_DIR (as `--database`): run
//! several `loadgen serve` on one database to measure replicas.

use std::future::Future;
use std::io::BufRead;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wagate::inbox::store::Durability;
use wagate::inbox::{Turn, TurnHandler, TurnOutcome};
use wagate::server::{HandlerFactory, HandlerServices, ServeOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") && (5..=6).contains(&args.len()) {
        serve(
            &args[2],
            &args[3],
            &args[4],
            args.get(5).map(String::as_str),
        );
        return;
    }
    if args.len() != 5 {
        eprintln!(
            "usage: loadgen URL BODIES_FILE RATE SECONDS\n       loadgen serve CONFIG_DIR DATA_DIR LISTEN [normal]"
        );
        std::process::exit(2);
    }
    open_loop(&args[1], &args[2], &args[3], &args[4]);
}

/// Logs each turn (at debug) and closes it after `hold`: what the dispatcher does with no agent
/// wired (hold 0), or with a model that takes that long.
struct LogOnly {
    hold: Duration,
}

impl TurnHandler for LogOnly {
    fn handle(&self, turn: Turn) -> Pin<Box<dyn Future<Output = TurnOutcome> + Send + '_>> {
        Box::pin(async move {
            tracing::debug!(turn_id = turn.id, messages = turn.messages.len(), "turn");
            if !self.hold.is_zero() {
                tokio::time::sleep(self.hold).await;
            }
            TurnOutcome::Done
        })
    }
}

fn serve(config_dir: &str, data_dir: &str, listen: &str, durability: Option<&str>) {
    wagate::telemetry::init(wagate::telemetry::LogFormat::Text);
    let config = wagate::config::Config::load(std::path::Path::new(config_dir))
        .unwrap_or_else(|e| panic!("invalid config in {config_dir}: {e}"));
    let durability = match durability {
        Some("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    let database = std::env::var("WAGATE_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .map(|url| {
            url.parse::<wagate::inbox::store::DatabaseUrl>()
                .unwrap_or_else(|e| panic!("{e}"))
        });
    // The same runtime `wagate serve` builds: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("listen address free");
        let hold = Duration::from_millis(
            std::env::var("LOADGEN_TURN_HOLD_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        );
        let handler: HandlerFactory =
            Box::new(move |_: &HandlerServices| Arc::new(LogOnly { hold }) as Arc<dyn TurnHandler>);
        let options = ServeOptions {
            data_dir: data_dir.into(),
            database,
            durability,
            handler: Some(handler),
            graph: Default::default(),
            env_file: None,
            http: Default::default(),
            clock: None,
            wake_ups: Default::default(),
        };
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        wagate::server::run(listener, config, options, stop)
            .await
            .expect("server runs");
    });
}

fn open_loop(url: &str, bodies_file: &str, rate: &str, seconds: &str) {
    let url = url.to_string();
    let rate: f64 = rate.parse().expect("RATE is a number");
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    let total = (rate * seconds) as usize;
    let reader: Box<dyn std::io::Read> = if bodies_file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(bodies_file).expect("bodies file readable"))
    };
    let bodies: Vec<(String, bytes::Bytes)> = std::io::BufReader::new(reader)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let (s, b) = l.split_once('\t')?;
            Some((s.to_string(), bytes::Bytes::from(b.to_string())))
        })
        .take(total)
        .collect();
    assert!(
        bodies.len() >= total,
        "need {total} bodies, file has {}",
        bodies.len()
    );

    // One worker thread: the load generator shares the machine with the server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let failures = Arc::new(Mutex::new(0usize));
    let start = Instant::now() + Duration::from_millis(100);
    let mut handles = Vec::with_capacity(total);
    for (i, (signature, body)) in bodies.into_iter().take(total).enumerate() {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now); // ~60 µs granularity, unlike tokio's 1 ms timer
        }
        let (client, url, latencies, failures) = (
            client.clone(),
            url.clone(),
            latencies.clone(),
            failures.clone(),
        );
        handles.push(runtime.spawn(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await;
            let ok = matches!(&response, Ok(r) if r.status() == 200);
            latencies.lock().unwrap().push(scheduled.elapsed());
            if !ok {
                *failures.lock().unwrap() += 1;
            }
        }));
    }
    runtime.block_on(async {
        for h in handles {
            let _ = h.await;
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "requests {total} in {elapsed:.1} s (target {rate}/s), failures {}",
        failures.lock().unwrap()
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        l.last().unwrap().as_secs_f64() * 1000.0
    );
}
