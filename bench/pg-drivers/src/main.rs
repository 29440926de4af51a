//! tokio-postgres + deadpool-postgres against sqlx on wagate's per-message PostgreSQL work
//! (`workload.rs`). One run = one driver, one concurrency, one fixed duration, in a process of
//! its own (so its CPU time is its driver's alone):
//!
//! ```text
//! pg-drivers --driver tokio-postgres|sqlx|sqlx-ping --url URL [--tasks 16] [--pool 16]
//!            [--seconds 10] [--warmup 3]
//! ```
//!
//! `tasks` concurrent tasks each run messages back to back (closed loop) on a pool of `pool`
//! connections. After the warm-up, for `seconds`, it counts the messages finished, their
//! latency (whole path, p50/p99), this process's CPU time (getrusage: user + system) and the
//! CPU time of the pool's PostgreSQL backends (/proc/PID/stat of `pg_backend_pid()`, so other
//! users of the cluster do not count), and prints one `RESULT key=value ...` line.
//! The database must have wagate's schema (`bench/pg-drivers.sh` makes one); its inbox tables
//! are emptied at the start of each run.

mod sqlx_pg;
mod tokio_pg;
mod workload;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    TokioPostgres,
    Sqlx { ping: bool },
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Driver::TokioPostgres => "tokio-postgres",
            Driver::Sqlx { ping: false } => "sqlx",
            Driver::Sqlx { ping: true } => "sqlx-ping",
        }
    }
}

struct Args {
    driver: Driver,
    url: String,
    tasks: usize,
    pool: usize,
    seconds: u64,
    warmup: u64,
}

fn args() -> Result<Args, Error> {
    let mut driver = None;
    let mut url = None;
    let (mut tasks, mut pool, mut seconds, mut warmup) = (16, 16, 10, 3);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--driver" => {
                driver = Some(match value()?.as_str() {
                    "tokio-postgres" => Driver::TokioPostgres,
                    "sqlx" => Driver::Sqlx { ping: false },
                    "sqlx-ping" => Driver::Sqlx { ping: true },
                    other => return Err(format!("unknown driver {other}").into()),
                })
            }
            "--url" => url = Some(value()?),
            "--tasks" => tasks = value()?.parse()?,
            "--pool" => pool = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--warmup" => warmup = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(Args {
        driver: driver.ok_or("--driver tokio-postgres|sqlx|sqlx-ping is required")?,
        url: url.ok_or("--url postgres://... is required")?,
        tasks,
        pool,
        seconds,
        warmup,
    })
}

/// The pool of one driver, behind one interface for the runner.
#[derive(Clone)]
enum Pool {
    TokioPostgres(deadpool_postgres::Pool),
    Sqlx(sqlx::PgPool),
}

impl Pool {
    async fn message(&self, m: &workload::Message) -> Result<(), Error> {
        match self {
            Pool::TokioPostgres(p) => tokio_pg::message(p, m).await,
            Pool::Sqlx(p) => sqlx_pg::message(p, m).await,
        }
    }
}

/// This process's CPU time so far (user + system).
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the buffer we own.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) of these server processes so far, from /proc.
fn backends_cpu(pids: &[i32]) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut total = 0u64;
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces), from field 3 on: utime is 14,
        // stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    Duration::from_micros(total * 1_000_000 / ticks)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    tokio_pg::reset(&args.url).await?;
    let (pool, pids) = match args.driver {
        Driver::TokioPostgres => {
            let pool = tokio_pg::pool(&args.url, args.pool)?;
            let pids = tokio_pg::warm(&pool, args.pool).await?;
            (Pool::TokioPostgres(pool), pids)
        }
        Driver::Sqlx { ping } => {
            let pool = sqlx_pg::pool(&args.url, args.pool as u32, ping).await?;
            let pids = sqlx_pg::warm(&pool, args.pool as u32).await?;
            (Pool::Sqlx(pool), pids)
        }
    };

    let run = format!("{:x}", workload::now_millis());
    let phase = Arc::new(AtomicU8::new(WARMING));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = Vec::with_capacity(args.tasks);
    for task in 0..args.tasks {
        let (pool, phase, errors, first_error, run) = (
            pool.clone(),
            Arc::clone(&phase),
            Arc::clone(&errors),
            Arc::clone(&first_error),
            run.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Latency in microseconds of each message finished while measuring.
            let mut latencies: Vec<u32> = Vec::with_capacity(16_384);
            let mut n = 0u64;
            while phase.load(Ordering::Relaxed) != STOPPED {
                let m = workload::Message::new(&run, task, n);
                n += 1;
                let started = Instant::now();
                let done = pool.message(&m).await;
                let elapsed = started.elapsed();
                if phase.load(Ordering::Relaxed) != MEASURING {
                    continue;
                }
                match done {
                    Ok(()) => latencies.push(elapsed.as_micros().min(u32::MAX as u128) as u32),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e.to_string());
                    }
                }
            }
            latencies
        }));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let (cpu0, server0, t0) = (process_cpu(), backends_cpu(&pids), Instant::now());
    phase.store(MEASURING, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    phase.store(STOPPED, Ordering::Relaxed);
    let (cpu1, server1, window) = (process_cpu(), backends_cpu(&pids), t0.elapsed());

    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    latencies.sort_unstable();
    let messages = latencies.len() as f64;
    let per_message = |d: Duration| {
        if messages > 0.0 {
            d.as_secs_f64() * 1e6 / messages
        } else {
            f64::NAN
        }
    };
    println!(
        "RESULT driver={} tasks={} pool={} seconds={:.1} messages={} per_s={:.1} p50_ms={:.2} \
         p99_ms={:.2} client_cpu_us={:.0} server_cpu_us={:.0} errors={}",
        args.driver.name(),
        args.tasks,
        args.pool,
        window.as_secs_f64(),
        latencies.len(),
        messages / window.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        per_message(cpu1 - cpu0),
        per_message(server1 - server0),
        errors.load(Ordering::Relaxed),
    );
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("first error: {e}");
    }
    Ok(())
}
