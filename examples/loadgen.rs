//! Open-loop load generator for the benchmarks (BENCHMARKS.md): sends pre-signed webhook bodies
//! at a FIXED rate, whatever the server does, and measures each request's latency from the
//! moment it was scheduled (so a stalled server cannot hide its stall, unlike a closed loop).
//!
//! cargo run --release --example loadgen -- URL BODIES_FILE RATE SECONDS
//!
//! BODIES_FILE holds `<signature>\t<body>` lines (bench/gen_bodies.py).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: loadgen URL BODIES_FILE RATE SECONDS");
        std::process::exit(2);
    }
    let url = args[1].clone();
    let rate: f64 = args[3].parse().expect("RATE is a number");
    let seconds: f64 = args[4].parse().expect("SECONDS is a number");
    let bodies: Vec<(String, bytes::Bytes)> = std::fs::read_to_string(&args[2])
        .expect("bodies file readable")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, b)| (s.to_string(), bytes::Bytes::from(b.to_string())))
        .collect();
    let total = (rate * seconds) as usize;
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
