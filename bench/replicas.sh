#!/usr/bin/env bash
# Several replicas on PostgreSQL (issue "Several replicas", "Speed"): the end-to-end benchmark
# (bench/e2e.sh's load generator, fake Ollama and fake Graph: examples/e2e_bench.rs) with 1, 2
# and 3 replicas on one PostgreSQL database, beside the same load on SQLite, and 2 replicas with
# NOTIFY hints on and off (WAGATE_NOTIFY). Each run gets a fresh database. Prints, per run,
# messages answered exactly once per second and the end-to-end p50/p99, then a table.
#
# Usage: bench/replicas.sh [RATE] [SECONDS] [USERS]      (defaults: 500 msg/s, 30 s, 500 users)
# Needs an administrator's URL of a PostgreSQL server in WAGATE_BENCH_POSTGRES_URL (or
# WAGATE_TEST_POSTGRES_URL, which `source .ci/components.sh` sets for a throwaway local
# cluster), and psql. The database `wagate_bench` on it is dropped and created for each run.
# Run it on a quiet machine: on 2 cores, every replica, PostgreSQL and the load generator share
# them, so it measures overhead, not scale (BENCHMARKS.md says how to read it).
# Exit code 1 when a run did not answer every message exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-500}
DURATION=${2:-30}
USERS=${3:-500}
TARGET=${CARGO_TARGET_DIR:-target}
BENCH_DB=wagate_bench
# ADMIN and DB_URL (bench/lib.sh).
source bench/lib.sh
postgres_bench_urls "$BENCH_DB"
cargo build --release --quiet --bin wagate --example e2e_bench

fresh_database() {
  psql -q -X -v ON_ERROR_STOP=1 "$ADMIN" \
    -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB" >/dev/null
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL: $(psql -X -At "$ADMIN" -c 'SHOW server_version') (synchronous_commit $(psql -X -At "$ADMIN" -c 'SHOW synchronous_commit'), fsync $(psql -X -At "$ADMIN" -c 'SHOW fsync'))"
echo "load: $RATE msg/s for $DURATION s from $USERS users"

RESULTS=()
FAILED=0
# run LABEL NOTIFY REPLICAS [--database=URL]
run() {
  local label=$1 notify=$2 replicas=$3
  shift 3
  echo
  echo "=== $label"
  local out
  out=$(mktemp)
  if ! WAGATE_NOTIFY=$notify WAGATE_BIN="$TARGET/release/wagate" \
      "$TARGET/release/examples/e2e_bench" "$RATE" "$DURATION" "$USERS" --replicas="$replicas" "$@" \
      | tee "$out"; then
    FAILED=1
  fi
  local summary
  summary=$(grep '^SUMMARY ' "$out" || echo "SUMMARY (no summary: the run failed)")
  RESULTS+=("$(printf '%-44s %s' "$label" "${summary#SUMMARY }")")
  rm -f "$out"
}

run "SQLite, 1 process" on 1
for n in 1 2 3; do
  fresh_database
  run "PostgreSQL, $n replica(s), NOTIFY on" on "$n" --database="$DB_URL"
done
fresh_database
run "PostgreSQL, 2 replicas, NOTIFY off" off 2 --database="$DB_URL"
# NOTIFY matters when a replica runs out of turn slots and leaves work to the others: the same
# with 4 slots per replica, hints on and off.
for notify in on off; do
  fresh_database
  WAGATE_BENCH_MAX_TURNS=4 run "PostgreSQL, 2 replicas, 4 slots, NOTIFY $notify" "$notify" 2 --database="$DB_URL"
done
psql -q -X "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null

echo
echo "=== summary ($RATE msg/s for $DURATION s, $USERS users): messages answered exactly once per second, end to end p50/p99"
for line in "${RESULTS[@]}"; do
  echo "$line"
done
exit $FAILED
