#!/usr/bin/env bash
# Where the server's CPU goes during a closed-loop run: CPU time per thread (from
# /proc/PID/task/*/stat) divided by the messages recorded, in microseconds per message.
# Usage: [PERF_OUT=perf.data] bench/threads.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
CONNS=${2:-64}
PORT=${PORT:-18080}
WORK=$(mktemp -d /tmp/wagate-threads.XXXXXX)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
# The release profile strips the binary; a perf profile needs its symbols and line tables.
if [ -n "${PERF_OUT:-}" ]; then
  export CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
fi
cargo build --release --quiet --example loadgen
BIN=${CARGO_TARGET_DIR:-target}/release
source bench/lib.sh
write_config
probe_machine
python3 bench/gen_bodies.py "$WORK/bodies.gz" $(( SECONDS_RUN * 30000 ))
start_server

ticks() { # name ticks(utime+stime) per thread
  for t in /proc/$SERVER/task/*; do
    awk '{ s=$0; sub(/^[^(]*\(/, "", s); name=s; sub(/\).*/, "", name); sub(/^[^)]*\) /, "", s);
           split(s, f, " "); print name, f[12] + f[13] }' "$t/stat"
  done | awk '{ n[$1]+=$2 } END { for (k in n) print k, n[k] }' | sort
}
ticks > "$WORK/before"
DISK0=$(awk '/^write_bytes/ {print $2}' /proc/$SERVER/io)
# PERF_OUT=file: also record a call-graph profile of the server during the run.
if [ -n "${PERF_OUT:-}" ]; then
  perf record -F ${PERF_FREQ:-999} -g --call-graph dwarf,16384 -p "$SERVER" -o "$PERF_OUT" -- sleep "$SECONDS_RUN" 2>/dev/null &
  PERF=$!
fi
BODIES="$WORK/bodies.gz" WRK_THREADS=2 \
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s bench/webhook.lua \
  "http://127.0.0.1:$PORT/v1/channels/whatsapp/webhook" > "$WORK/wrk.out"
grep -E "Requests/sec|99%|50%" "$WORK/wrk.out"
ticks > "$WORK/after"
DISK1=$(awk '/^write_bytes/ {print $2}' /proc/$SERVER/io)
[ -n "${PERF_OUT:-}" ] && wait $PERF
MSGS=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^wagate_messages_recorded_total/ { s += $2 } END { print s }')
HZ=$(getconf CLK_TCK)
echo "disk writes per message: $(( (DISK1 - DISK0) / MSGS )) bytes; WAL now $(stat -c %s "$WORK/data/wagate.db-wal") bytes"
echo "messages recorded: $MSGS; CPU per message by thread (µs):"
join "$WORK/before" "$WORK/after" | awk -v m="$MSGS" -v hz="$HZ" \
  '{ d = $3 - $2; tot += d; printf "  %-24s %8.1f\n", $1, d / hz * 1e6 / m } END { printf "  %-24s %8.1f\n", "total", tot / hz * 1e6 / m }'
