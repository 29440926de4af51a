#!/usr/bin/env bash
# Memory with a backlog (issue 14, item 2): the server's RSS must follow the turns that run,
# not the work that waits. Three phases, each on the real server (`loadgen serve`, the same
# intake, store and dispatcher as `wagate serve`):
#   1. N messages from N different customers arrive while every turn hangs (a model that never
#      answers: LOADGEN_TURN_HOLD_MS = 1 h): 64 turns run, the rest wait in the store.
#   2. kill -9 and restart with the N - 64 conversations still pending: resume.
#   3. restart with turns that finish at once: the whole backlog drains; RSS after the drain.
# RSS is VmRSS (now) and VmHWM (peak) from /proc. Usage: [USERS=1000] bench/backlog.sh [N] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
USERS=${USERS:-$N}   # USERS=1000: a flood from 1,000 customers, 100 messages each
RATE=${2:-4000}
PORT=${PORT:-18081}
WORK=$(mktemp -d /tmp/wagate-backlog.XXXXXX)
trap 'kill -9 $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --example loadgen
BIN=${CARGO_TARGET_DIR:-target}/release
source bench/lib.sh
write_config
probe_machine

URL="http://127.0.0.1:$PORT"
rss() { awk '/VmRSS|VmHWM/ {printf "%s %.1f MB  ", $1, $2/1024}' "/proc/$SERVER/status"; echo; }
open_messages() { curl -s "$URL/metrics" | awk '/^wagate_inbox_open_messages/ {print $2}'; }
# Like start_server in lib.sh, but keeps the inbox (phases 2 and 3 reopen it).
serve() {
  LOADGEN_TURN_HOLD_MS=$1 RUST_LOG=${SERVER_LOG:-warn} "$BIN/examples/loadgen" serve "$WORK/config" "$WORK/data" "127.0.0.1:$PORT" &
  SERVER=$!
  for _ in $(seq 300); do curl -fs "$URL/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}

python3 bench/gen_bodies.py "$WORK/bodies.gz" "$N" bench-secret "$USERS"
SECS=$(python3 -c "print($N / $RATE)")

echo "== 1. $N messages from $USERS customers while every turn hangs ($RATE msg/s)"
serve 3600000
echo "idle:            $(rss)"
{ gzip -dc "$WORK/bodies.gz" || true; } | "$BIN/examples/loadgen" "$URL/v1/channels/whatsapp/webhook" - "$RATE" "$SECS"
sleep 2
echo "open messages:   $(open_messages)"
echo "after intake:    $(rss)"

echo "== 2. kill -9, restart with the backlog pending"
kill -9 $SERVER; wait $SERVER 2>/dev/null || true
serve 3600000
sleep 1; echo "resume +1 s:     $(rss)"
sleep 9; echo "resume +10 s:    $(rss)"
echo "open messages:   $(open_messages)"

echo "== 3. restart with turns that finish at once: drain"
kill -9 $SERVER; wait $SERVER 2>/dev/null || true
serve 0
START=$(date +%s)
while [ "$(open_messages)" != "0" ]; do sleep 1; done
echo "drained in $(( $(date +%s) - START )) s"
sleep 2; echo "after the drain: $(rss)"
kill $SERVER; wait $SERVER 2>/dev/null || true
