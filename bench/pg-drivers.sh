#!/usr/bin/env bash
# PostgreSQL drivers (issue "Several replicas", item 9): tokio-postgres + deadpool-postgres (what
# wagate uses) against sqlx, on the same per-message work as wagate's PostgreSQL hot path
# (bench/pg-drivers/src/workload.rs: intake and claim, memory read, reply saved and read back,
# part sending and sent, memory appended, finish: 17 statements, 11 of them in 2 transactions,
# 21 round trips and 6 commits, on wagate's own schema). Pool of 16; 16 and 64 concurrent tasks,
# closed loop, a fixed duration each. The drivers run interleaved, A/B/A/B, ROUNDS times each, so a
# noisy machine disturbs both alike; each figure is printed with the load average before its run.
#
# Usage: bench/pg-drivers.sh [SECONDS] [ROUNDS]     (defaults: 10 s per run, 3 rounds)
#   DRIVERS="tokio-postgres sqlx sqlx-ping" adds sqlx with its default pool (a ping before every
#   checkout); TASKS="16 64" sets the concurrencies.
# Needs an administrator's URL of a PostgreSQL server in WAGATE_BENCH_POSTGRES_URL (or
# WAGATE_TEST_POSTGRES_URL, which `source .ci/components.sh` sets for a throwaway local cluster),
# and psql. A fresh database (wagate_bench_drivers) gets wagate's migrations; it is dropped at
# the end. The bench crate is not part of wagate's build: it is built here, in release mode, with
# its own Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
ROUNDS=${2:-3}
DRIVERS=${DRIVERS:-tokio-postgres sqlx}
TASKS=${TASKS:-16 64}
BENCH_DB=wagate_bench_drivers
# ADMIN and DB_URL (bench/lib.sh).
source bench/lib.sh
postgres_bench_urls "$BENCH_DB"
cargo build --release --locked --quiet --manifest-path bench/pg-drivers/Cargo.toml
BIN=${CARGO_TARGET_DIR:-bench/pg-drivers/target}/release/pg-drivers

psql -q -X -v ON_ERROR_STOP=1 "$ADMIN" \
  -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB" >/dev/null
trap 'psql -q -X "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
for migration in migrations/postgres/*.sql; do
  psql -q -X -v ON_ERROR_STOP=1 "$DB_URL" -f "$migration" >/dev/null
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL: $(psql -X -At "$ADMIN" -c 'SHOW server_version') (synchronous_commit $(psql -X -At "$ADMIN" -c 'SHOW synchronous_commit'), fsync $(psql -X -At "$ADMIN" -c 'SHOW fsync'))"
echo "runs: $SECONDS_PER_RUN s each (after 3 s of warm-up), pool 16, tasks: $TASKS, drivers: $DRIVERS, $ROUNDS rounds"

ROWS=()
FAILED=0
for round in $(seq 1 "$ROUNDS"); do
  for tasks in $TASKS; do
    for driver in $DRIVERS; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      line=$("$BIN" --driver "$driver" --url "$DB_URL" --tasks "$tasks" --pool 16 \
        --seconds "$SECONDS_PER_RUN" --warmup 3 | grep '^RESULT ' || echo "RESULT driver=$driver tasks=$tasks failed=1")
      echo "round $round load $load $line"
      case "$line" in *" errors=0"*) ;; *) FAILED=1 ;; esac
      ROWS+=("$round $load ${line#RESULT }")
    done
  done
done

echo
printf '%s\n' "${ROWS[@]}" | python3 -c "$(cat <<'EOF'
import sys, statistics
runs = {}
print("| round | load avg (1 min) before | driver | tasks | msg/s | p50 ms | p99 ms | client CPU µs/msg | server CPU µs/msg | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for line in sys.stdin:
    round_, load, *kv = line.split()
    d = dict(x.split("=", 1) for x in kv)
    g = lambda k: d.get(k, "-")
    print(f"| {round_} | {load} | {g('driver')} | {g('tasks')} | {g('per_s')} | {g('p50_ms')} | {g('p99_ms')} | {g('client_cpu_us')} | {g('server_cpu_us')} | {g('errors')} |")
    if "per_s" in d:
        runs.setdefault((int(d["tasks"]), d["driver"]), []).append(d)
print()
print("medians over the rounds:")
print()
print("| driver | tasks | msg/s | p50 ms | p99 ms | client CPU µs/msg | server CPU µs/msg |")
print("|---|---|---|---|---|---|---|")
for (tasks, driver), rs in sorted(runs.items()):
    m = lambda k: statistics.median(float(r[k]) for r in rs)
    print(f"| {driver} | {tasks} | {m('per_s'):.0f} | {m('p50_ms'):.2f} | {m('p99_ms'):.2f} | {m('client_cpu_us'):.0f} | {m('server_cpu_us'):.0f} |")
EOF
)"
exit $FAILED
