//! Turning the tally into numbers: exactly-once counts and latency percentiles per stage.

use super::load::scheduled;
use super::tally::{Stage, Tally};
use std::time::{Duration, Instant};

/// Exactly-once accounting over every message sent.
#[derive(Default)]
pub struct Delivery {
    /// Carried by one model call, whose reply arrived once.
    pub answered_once: usize,
    /// Of those, answered together with later messages of the same user (one turn).
    pub batched: usize,
    /// Answered twice: its turn's reply arrived more than once, or two turns carried it.
    pub duplicated: usize,
    /// Of those, the ones whose turn's reply reached the Graph API more than once.
    pub reply_sent_twice: usize,
    /// Answered once, but the model was asked again for it (a turn retried before its reply
    /// was saved): invisible to the customer, costs a model call.
    pub model_asked_again: usize,
    /// Never reached the model, or its turn's reply never arrived.
    pub missing: usize,
    /// Replies quoting a message that was not the last of its turn.
    pub misquoted: usize,
}

impl Delivery {
    pub fn exactly_once(&self) -> bool {
        self.duplicated == 0 && self.missing == 0 && self.misquoted == 0
    }
}

pub fn delivery(tally: &Tally) -> Delivery {
    let mut d = Delivery::default();
    for i in 0..tally.messages() {
        let turn = tally.turn_of(i);
        if turn != Some(i) && tally.replies_to(i) > 0 {
            d.misquoted += 1;
        }
        let Some(j) = turn else {
            d.missing += 1;
            continue;
        };
        match tally.replies_to(j) {
            0 => d.missing += 1,
            1 if !tally.carried_twice(i) => {
                d.answered_once += 1;
                if j != i {
                    d.batched += 1;
                }
                if tally.times_asked(i) > 1 {
                    d.model_asked_again += 1;
                }
            }
            n => {
                d.duplicated += 1;
                if n > 1 {
                    d.reply_sent_twice += 1;
                }
            }
        }
    }
    d
}

/// Sorted latencies with percentile lookups.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Latencies(values)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn line(&self, name: &str) -> String {
        let ms = |d: Duration| format!("{:8.2}", d.as_secs_f64() * 1e3);
        format!(
            "{name:<34} {:>6} {} {} {} {} {} {}",
            self.0.len(),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(99.9)),
            ms(self.0.last().copied().unwrap_or_default()),
            ms(self.mean()),
        )
    }

    fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

pub const HEADER: &str =
    "stage (ms)                              n      p50      p90      p99    p99.9      max     mean";

/// Time from the scheduled send of each message to `stage`.
pub fn since_send(tally: &Tally, start: Instant, rate: f64, stage: Stage) -> Latencies {
    Latencies::new(
        (0..tally.messages())
            .filter_map(|i| {
                let at = tally.stage_at(stage, i)?;
                Some(at.saturating_duration_since(scheduled(start, rate, i)))
            })
            .collect(),
    )
}

/// End-to-end p50 and p99 (ms) of the messages sent in each of `slices` equal parts of the
/// run, to show whether latency builds up as the run goes on.
pub fn by_slice(tally: &Tally, start: Instant, rate: f64, slices: usize) -> Vec<(f64, f64)> {
    let n = tally.messages();
    let slices = slices.clamp(1, n.max(1));
    (0..slices)
        .map(|s| {
            let latencies = Latencies::new(
                (s * n / slices..(s + 1) * n / slices)
                    .filter_map(|i| {
                        let at = tally.stage_at(Stage::ReplyAccepted, i)?;
                        Some(at.saturating_duration_since(scheduled(start, rate, i)))
                    })
                    .collect(),
            );
            let ms = |p| latencies.percentile(p).as_secs_f64() * 1e3;
            (ms(50.0), ms(99.0))
        })
        .collect()
}

/// Time from `from` to `to`, for messages seen at both.
pub fn between(tally: &Tally, from: Stage, to: Stage) -> Latencies {
    Latencies::new(
        (0..tally.messages())
            .filter_map(|i| {
                let a = tally.stage_at(from, i)?;
                let b = tally.stage_at(to, i)?;
                Some(b.saturating_duration_since(a))
            })
            .collect(),
    )
}

/// The lines of a Prometheus exposition worth showing next to the numbers.
pub fn interesting_metrics(text: &str) -> Vec<&str> {
    const NAMES: &[&str] = &[
        "wagate_turns_total",
        "wagate_turns_claimed_total",
        "wagate_turn_duration_seconds_sum",
        "wagate_turn_duration_seconds_count",
        "wagate_graph_sends_total",
        "wagate_messages_recorded_total",
        "wagate_duplicates_dropped_total",
        "wagate_webhooks_total",
    ];
    text.lines()
        .filter(|l| NAMES.iter().any(|n| l.starts_with(n)))
        .collect()
}

/// The server's warnings and errors grouped by message, most frequent first.
pub fn log_summary(log: &str) -> Vec<(usize, String)> {
    let ansi = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("a valid regex");
    // `<timestamp> <LEVEL> <target>: <message> <field>=...`: keep level and message.
    let line_re =
        regex::Regex::new(r"^\S+\s+(\w+)\s+\S+: (.*?)(?:\s+\w+=.*)?$").expect("a valid regex");
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in log.lines() {
        let plain = ansi.replace_all(line, "");
        let key = match line_re.captures(&plain) {
            Some(c) => format!("{} {}", &c[1], &c[2]),
            None => plain.chars().take(120).collect(),
        };
        *counts.entry(key).or_default() += 1;
    }
    let mut sorted: Vec<(usize, String)> = counts.into_iter().map(|(k, n)| (n, k)).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
}
