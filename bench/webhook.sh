#!/usr/bin/env bash
# Webhook intake benchmark (issue 2): signed ~2 KB message webhooks with unique ids, so every
# request is verified, parsed and durably recorded (SQLite WAL, synchronous=FULL, group commit).
#   closed loop: wrk, 64 connections, 2 threads
#   open loop:   examples/loadgen at a fixed rate, latency measured from the scheduled send time
# The server is `loadgen serve`: wagate::server::run with the log-only turn handler, so each
# message also becomes a turn (claim + finish in the store), as without an agent wired.
# DURABILITY=normal opts into synchronous=NORMAL (default FULL).
# Usage: bench/webhook.sh [SECONDS] [OPEN_LOOP_RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
RATE=${2:-5000}
PORT=${PORT:-18080}
WORK=$(mktemp -d /tmp/wagate-bench.XXXXXX)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --example loadgen
BIN=${CARGO_TARGET_DIR:-target}/release

source bench/lib.sh
write_config
probe_machine

# Enough unique bodies for 30k req/s; each server start has an empty inbox, so the open loop
# reuses the same bodies and they are new to it too.
python3 bench/gen_bodies.py "$WORK/bodies.gz" $(( SECONDS_RUN * 30000 ))

echo "== closed loop: wrk -t2 -c64 -d${SECONDS_RUN}s"
start_server
BODIES="$WORK/bodies.gz" WRK_THREADS=2 wrk -t2 -c64 -d"${SECONDS_RUN}s" --latency -s bench/webhook.lua \
  "http://127.0.0.1:$PORT/v1/channels/whatsapp/webhook"
echo "peak RSS (kB): $(grep VmHWM /proc/$SERVER/status | awk '{print $2}')"
echo "messages recorded: $(curl -s "http://127.0.0.1:$PORT/metrics" | grep '^wagate_messages_recorded_total' || true)"
kill $SERVER; wait $SERVER 2>/dev/null || true

echo "== open loop: ${RATE} req/s for ${SECONDS_RUN}s"
start_server
{ gzip -dc "$WORK/bodies.gz" || true; } | "$BIN/examples/loadgen" "http://127.0.0.1:$PORT/v1/channels/whatsapp/webhook" - "$RATE" "$SECONDS_RUN"
kill $SERVER; wait $SERVER 2>/dev/null || true
