//! `--sample=FILE.csv`: the server's resident memory and open file descriptors every few
//! seconds, written as CSV while the bench runs, summarised at the end (a soak test's evidence
//! that neither grows without bound).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One sample: seconds since the start, VmRSS in kB, open file descriptors.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at_s: f64,
    pub rss_kb: u64,
    pub fds: u64,
}

/// A background thread sampling `pid` every `every` into `path`.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32, path: &str, every: Duration) -> std::io::Result<Sampler> {
        let mut file = std::fs::File::create(path)?;
        writeln!(file, "seconds,rss_kb,open_fds")?;
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
            move || {
                let start = Instant::now();
                let mut next = start;
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        let sample = Sample {
                            at_s: start.elapsed().as_secs_f64(),
                            rss_kb: rss_kb(pid),
                            fds: open_fds(pid),
                        };
                        let _ =
                            writeln!(file, "{:.1},{},{}", sample.at_s, sample.rss_kb, sample.fds);
                        let _ = file.flush();
                        samples
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(sample);
                        next += every;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Ok(Sampler {
            stop,
            samples,
            thread: Some(thread),
        })
    }

    /// Stops sampling and returns the samples taken.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.clone()
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Least-squares slope of `value` over `at_s`, per minute.
fn slope_per_minute(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.at_s).sum::<f64>() / n;
    let mean_v = samples.iter().map(&value).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        num += (s.at_s - mean_t) * (value(s) - mean_v);
        den += (s.at_s - mean_t).powi(2);
    }
    if den == 0.0 {
        0.0
    } else {
        60.0 * num / den
    }
}

/// First, max and last of RSS and descriptors, and their slopes over the whole run and over
/// its second half (after the warm-up, where a leak shows as a steady climb).
pub fn summary(samples: &[Sample]) -> Vec<String> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return vec!["no samples".into()];
    };
    let second_half = &samples[samples.len() / 2..];
    let mb = |kb: u64| kb as f64 / 1024.0;
    let max_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    vec![
        format!(
            "{} samples over {:.0} s",
            samples.len(),
            last.at_s - first.at_s
        ),
        format!(
            "RSS MB: first {:.1}, max {:.1}, last {:.1}; slope {:+.2} MB/min overall, {:+.2} MB/min in the second half",
            mb(first.rss_kb),
            mb(max_rss),
            mb(last.rss_kb),
            slope_per_minute(samples, |s| s.rss_kb as f64) / 1024.0,
            slope_per_minute(second_half, |s| s.rss_kb as f64) / 1024.0,
        ),
        format!(
            "open fds: first {}, max {}, last {}; slope {:+.2}/min overall, {:+.2}/min in the second half",
            first.fds,
            max_fds,
            last.fds,
            slope_per_minute(samples, |s| s.fds as f64),
            slope_per_minute(second_half, |s| s.fds as f64),
        ),
    ]
}
