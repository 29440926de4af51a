//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! A small registry instead of a metrics framework, and each server (and each test) owns its
//! own registry instead of sharing a global one. The series every webhook or turn touches (the
//! `HOT` list) are atomics: an update takes no lock and allocates nothing. Every other series
//! lives in a map from (name, labels) to a value behind one mutex.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric wagate exports, with its help text. Names not listed here are refused in debug
/// builds, so the list below is the documentation.
const CATALOGUE: &[(&str, Kind, &str)] = &[
    (
        "wagate_webhooks_total",
        Kind::Counter,
        "Webhook POSTs by outcome (accepted, unauthorized, bad_request, too_large, unavailable).",
    ),
    (
        "wagate_messages_recorded_total",
        Kind::Counter,
        "Inbound messages newly recorded in the inbox, by state (pending, skipped).",
    ),
    (
        "wagate_duplicates_dropped_total",
        Kind::Counter,
        "Inbound messages dropped because their id was already recorded.",
    ),
    (
        "wagate_statuses_recorded_total",
        Kind::Counter,
        "Delivery statuses received for outbound messages.",
    ),
    (
        "wagate_dead_letters_total",
        Kind::Counter,
        "Webhook content kept as a dead letter because it was not understood.",
    ),
    (
        "wagate_lanes_active",
        Kind::Gauge,
        "Conversations with a running or waiting turn.",
    ),
    (
        "wagate_lanes_waiting",
        Kind::Gauge,
        "Conversations waiting for a free turn slot (lane queue depth).",
    ),
    (
        "wagate_inbox_open_messages",
        Kind::Gauge,
        "Messages recorded and not yet answered.",
    ),
    (
        "wagate_inbox_oldest_pending_age_seconds",
        Kind::Gauge,
        "Age of the oldest unanswered message (0 when none).",
    ),
    (
        "wagate_turns_total",
        Kind::Counter,
        "Turns by outcome (done, failed, retry_later).",
    ),
    (
        "wagate_turn_duration_seconds",
        Kind::Histogram,
        "Wall time of one turn, from claim to outcome.",
    ),
    (
        "wagate_graph_sends_total",
        Kind::Counter,
        "Reply parts sent to the Graph API by outcome (accepted, retry_later, final_error) and Meta error code.",
    ),
    ("wagate_media_bytes_total", Kind::Counter, "Inbound media bytes downloaded, by kind."),
    (
        "wagate_model_calls_total",
        Kind::Counter,
        "Model calls by provider, model and outcome (ok, error, timeout).",
    ),
    (
        "wagate_model_call_duration_seconds",
        Kind::Histogram,
        "Wall time of one model call, by provider and model.",
    ),
    ("wagate_tokens_total", Kind::Counter, "Tokens by provider, model and kind (prompt, completion)."),
    (
        "wagate_graph_retries_total",
        Kind::Counter,
        "Graph API calls retried, by operation and Meta error code (empty: HTTP or transport error).",
    ),
    (
        "wagate_rate_limiter_wait_seconds_total",
        Kind::Counter,
        "Seconds sends spent waiting for the channel rate limit and per-user pacing.",
    ),
    (
        "wagate_config_reloads_total",
        Kind::Counter,
        "Config reloads by outcome (applied, rejected: the previous config stayed in force).",
    ),
    ("wagate_config_generation", Kind::Gauge, "Generation of the config in force (1 at start, +1 per reload)."),
    (
        "wagate_transcriptions_total",
        Kind::Counter,
        "Audio transcriptions by provider and outcome (ok, error, timeout, too_long).",
    ),
    (
        "wagate_transcription_audio_bytes_total",
        Kind::Counter,
        "Bytes of audio transcribed successfully, by provider.",
    ),
    (
        "wagate_transcription_duration_seconds",
        Kind::Histogram,
        "Wall time of one transcription upload, until the answer or the timeout, by provider.",
    ),
    (
        "wagate_handoffs_total",
        Kind::Counter,
        "Conversations handed to a person, by trigger (operator, keyword, tool).",
    ),
    (
        "wagate_handoff_releases_total",
        Kind::Counter,
        "Conversations given back to the agent, by trigger (operator, timeout).",
    ),
    (
        "wagate_handoff_waiting_conversations",
        Kind::Gauge,
        "Conversations handed over by a keyword or the agent with no operator reply yet (waiting for a person).",
    ),
    (
        "wagate_handoff_oldest_wait_seconds",
        Kind::Gauge,
        "How long the longest-waiting conversation has waited for a person (0 when none).",
    ),
    (
        "wagate_operator_replies_total",
        Kind::Counter,
        "Replies written by an operator (API or console) and queued for sending.",
    ),
    (
        "wagate_window_outcomes_total",
        Kind::Counter,
        "Messages that met a closed 24-hour window, by outcome (held behind the reopen template, failed).",
    ),
    (
        "wagate_tool_sends_total",
        Kind::Counter,
        "WhatsApp messages the agent's sending tools produced (saved to send), by Meta type (interactive, image, document, location, reaction).",
    ),
    (
        "wagate_opt_outs_total",
        Kind::Counter,
        "Customers who opted out (an opt_out keyword, or a marketing stop in WhatsApp).",
    ),
    (
        "wagate_opt_resumes_total",
        Kind::Counter,
        "Customers who opted back in (a resume keyword, or a marketing resume in WhatsApp).",
    ),
];

/// Series with fixed labels that are updated per webhook or per turn.
const HOT: [(&str, &[(&str, &str)]); 9] = [
    ("wagate_webhooks_total", &[("outcome", "accepted")]),
    ("wagate_messages_recorded_total", &[("state", "pending")]),
    ("wagate_messages_recorded_total", &[("state", "skipped")]),
    ("wagate_duplicates_dropped_total", &[]),
    ("wagate_statuses_recorded_total", &[]),
    ("wagate_lanes_active", &[]),
    ("wagate_lanes_waiting", &[]),
    ("wagate_turns_total", &[("outcome", "done")]),
    ("wagate_turns_total", &[("outcome", "retry_later")]),
];

/// The one histogram observed per turn (no labels).
const HOT_HISTOGRAM: &str = "wagate_turn_duration_seconds";

fn hot_slot(name: &str, labels: &[(&'static str, &str)]) -> Option<usize> {
    HOT.iter().position(|(n, l)| {
        *n == name && l.len() == labels.len() && l.iter().zip(labels).all(|(a, b)| a == b)
    })
}

/// An f64 in an atomic; `touched` once updated, so untouched series are not rendered.
#[derive(Default)]
struct HotValue {
    bits: AtomicU64,
    touched: AtomicBool,
}

impl HotValue {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
        if !self.touched.load(Ordering::Relaxed) {
            self.touched.store(true, Ordering::Relaxed);
        }
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct HotHistogram {
    /// Count per bucket (not cumulative), then +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum: HotValue,
    count: AtomicU64,
}

#[derive(Default, Clone)]
struct Series {
    value: f64,
    /// Histogram only: count per bucket (not cumulative), then +Inf.
    buckets: Vec<u64>,
    count: u64,
}

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
pub struct Metrics {
    hot: [HotValue; HOT.len()],
    turn_durations: HotHistogram,
    series: Mutex<BTreeMap<Key, Series>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn bucket(seconds: f64) -> usize {
    BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(BUCKETS.len())
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        match hot_slot(name, labels) {
            Some(i) => self.hot[i].update(|v| v + by),
            None => self.update(name, labels, |s| s.value += by),
        }
    }

    pub fn gauge_set(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        match hot_slot(name, labels) {
            Some(i) => self.hot[i].update(|_| value),
            None => self.update(name, labels, |s| s.value = value),
        }
    }

    pub fn gauge_add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        self.add(name, labels, by);
    }

    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        if name == HOT_HISTOGRAM && labels.is_empty() {
            let h = &self.turn_durations;
            h.buckets[bucket(seconds)].fetch_add(1, Ordering::Relaxed);
            h.count.fetch_add(1, Ordering::Relaxed);
            h.sum.update(|v| v + seconds);
            return;
        }
        self.update(name, labels, |s| {
            if s.buckets.is_empty() {
                s.buckets = vec![0; BUCKETS.len() + 1];
            }
            s.buckets[bucket(seconds)] += 1;
            s.count += 1;
            s.value += seconds;
        });
    }

    /// The current value of a counter or gauge (tests and `/readyz` read it).
    pub fn value(&self, name: &'static str, labels: &[(&'static str, &str)]) -> f64 {
        if let Some(i) = hot_slot(name, labels) {
            return self.hot[i].get();
        }
        let key = key(name, labels);
        self.lock().get(&key).map_or(0.0, |s| s.value)
    }

    fn update(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
        f: impl FnOnce(&mut Series),
    ) {
        debug_assert!(
            CATALOGUE.iter().any(|(n, _, _)| *n == name),
            "metric {name} is not in the catalogue"
        );
        f(self.lock().entry(key(name, labels)).or_default());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Series>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every series, hot ones included, in one map (for rendering).
    fn snapshot(&self) -> BTreeMap<Key, Series> {
        let mut all = self.lock().clone();
        for (i, (name, labels)) in HOT.iter().enumerate() {
            if self.hot[i].touched.load(Ordering::Relaxed) {
                let series = Series {
                    value: self.hot[i].get(),
                    ..Series::default()
                };
                all.insert(key(name, labels), series);
            }
        }
        let h = &self.turn_durations;
        let count = h.count.load(Ordering::Relaxed);
        if count > 0 {
            let series = Series {
                value: h.sum.get(),
                buckets: h
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
                count,
            };
            all.insert((HOT_HISTOGRAM, Vec::new()), series);
        }
        all
    }

    /// The Prometheus text format: HELP and TYPE for every catalogued metric, then its series.
    pub fn render(&self) -> String {
        let series = self.snapshot();
        let mut out = String::with_capacity(4096);
        for (name, kind, help) in CATALOGUE {
            let type_name = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {type_name}");
            for ((_, labels), s) in series
                .range((*name, Vec::new())..)
                .take_while(|((n, _), _)| n == name)
            {
                match kind {
                    Kind::Histogram => render_histogram(&mut out, name, labels, s),
                    _ => {
                        let _ = writeln!(out, "{name}{} {}", label_text(labels, None), s.value);
                    }
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &[(&'static str, String)], s: &Series) {
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += s.buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            label_text(labels, Some(&bound.to_string()))
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{} {}",
        label_text(labels, Some("+Inf")),
        s.count
    );
    let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), s.value);
    let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), s.count);
}

fn key(name: &'static str, labels: &[(&'static str, &'_ str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
    )
}

fn label_text(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_help_type_and_labels() {
        let m = Metrics::new();
        m.inc("wagate_webhooks_total", &[("outcome", "accepted")]);
        m.inc("wagate_webhooks_total", &[("outcome", "accepted")]);
        m.inc("wagate_webhooks_total", &[("outcome", "unauthorized")]);
        let text = m.render();
        assert!(text.contains("# TYPE wagate_webhooks_total counter"));
        assert!(text.contains("wagate_webhooks_total{outcome=\"accepted\"} 2"));
        assert!(text.contains("wagate_webhooks_total{outcome=\"unauthorized\"} 1"));
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let m = Metrics::new();
        m.observe("wagate_turn_duration_seconds", &[], 0.003);
        m.observe("wagate_turn_duration_seconds", &[], 0.2);
        let text = m.render();
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("wagate_turn_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("wagate_turn_duration_seconds_count 2"));
    }
}
