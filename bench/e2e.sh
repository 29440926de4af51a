#!/usr/bin/env bash
# End-to-end benchmark (issue 4, "Speed"): signed text webhooks at a fixed rate from many users,
# through the real `wagate serve` (release build), a fake Ollama that answers at once and a fake
# Graph API, both in the bench process. Latency = scheduled send of a webhook -> the fake Graph
# receiving the reply that quotes it. Also checks exactly-once delivery and the server's peak RSS.
# Usage: bench/e2e.sh [RATE] [SECONDS] [USERS] [--no-memory] [--no-guardrails] [--lean]
#        (defaults: 500 messages/s, 30 s, 500 users, agent with memory and PII guardrails)
# Exit code 1 when a message is not answered exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin wagate --example e2e_bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
WAGATE_BIN="$TARGET/release/wagate" exec "$TARGET/release/examples/e2e_bench" "$@"
