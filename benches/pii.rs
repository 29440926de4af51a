//! PII redaction speed on a 4 KB chat message mixing every kind of PII and look-alikes.
//! Run with `cargo bench --bench pii`; prints nanoseconds per call (target: under 50 µs).

use std::hint::black_box;
use std::time::{Duration, Instant};
use wagate::guardrails::redact_pii;

fn mixed_message() -> String {
    let block = "Hi team, customer Ana (ana.souza@example.com, +55 11 99999-9999) asked about \
        Order #12345 and ORD-2024-001234 placed on 2024-05-17 at 10:30 for $1,299.99. \
        She paid with 4111 1111 1111 1111; the old card 1234567812345678 was declined. \
        Refund to DE89 3704 0044 0532 0130 00 or call (415) 555-0100. SSN on file 123-45-6789. \
        App v1.2.3, docs at https://example.com/help?id=42, ção 日本語 🎉.\n";
    let mut text = block.repeat(4096 / block.len() + 1);
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|i| *i <= 4096)
        .last()
        .unwrap_or(0);
    text.truncate(cut);
    text
}

fn plain_message() -> String {
    "Thanks for reaching out! Your parcel left our warehouse this morning and should arrive \
     soon; we will let you know when the courier is nearby. Have a great day. "
        .repeat(30)
}

/// Runs `f` for about `budget` after a warm-up and returns the mean time per call.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..100 {
        f();
    }
    let mut iterations = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        iterations += 100;
    }
    start.elapsed() / iterations
}

fn main() {
    let mixed = mixed_message();
    let plain = plain_message();
    let budget = Duration::from_secs(2);
    // `cargo bench --bench pii -- mixed` runs only the cases whose name contains "mixed".
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (name, text) in [("mixed PII", &mixed), ("no PII", &plain)] {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let per_call = measure(budget, || {
            black_box(redact_pii(black_box(text)));
        });
        println!(
            "redact_pii, {} bytes, {name}: {} ns/iter",
            text.len(),
            per_call.as_nanos()
        );
    }
}
