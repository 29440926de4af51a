#!/usr/bin/env bash
# Two (or more) wagate builds against one PostgreSQL, interleaved: the end-to-end benchmark
# (examples/e2e_bench.rs) with one replica on a fresh database per run, in the order given, and
# per run PostgreSQL's own CPU per message (its backends serving the bench's database), beside
# p50/p99 and wagate's CPU. The machine's speed drifts (BENCHMARKS.md saw the same binary cost
# PostgreSQL 2.8 ms and 3.7 ms a message 40 minutes apart), so compare builds run side by side:
# give them alternately, e.g. `old=... new=... new=... old=...`.
#
# Usage: bench/pg-ab.sh RATE SECONDS LABEL=PATH/TO/wagate [LABEL=PATH ...]
# A build of another revision, for example the one before a change:
#     git worktree add /tmp/wagate-before <rev> && (cd /tmp/wagate-before && cargo build --release --bin wagate)
#     bench/pg-ab.sh 300 20 before=/tmp/wagate-before/target/release/wagate new=target/release/wagate \
#                           new=target/release/wagate before=/tmp/wagate-before/target/release/wagate
# Needs an administrator's URL of a PostgreSQL server on this machine (its backends' CPU is read
# from /proc) in WAGATE_BENCH_POSTGRES_URL or WAGATE_TEST_POSTGRES_URL (`source
# .ci/components.sh` starts a throwaway cluster), and psql. The database `wagate_bench` is
# dropped and created for each run. Run it with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
RATE=$1
DURATION=$2
shift 2
TARGET=${CARGO_TARGET_DIR:-target}
BENCH_DB=wagate_bench
# ADMIN and DB_URL (bench/lib.sh); the server must run on this machine (its CPU is read).
source bench/lib.sh
postgres_bench_urls "$BENCH_DB"
cargo build --release --quiet --example e2e_bench
MESSAGES=$(python3 -c "print(round($RATE * $DURATION))")

# CPU seconds (user + system) of the server processes serving the bench's database right now.
backend_cpu() {
  local ticks=0 pid fields
  for pid in $(psql -X -At "$ADMIN" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$BENCH_DB'"); do
    fields=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    set -- $fields
    ticks=$((ticks + ${12} + ${13}))
  done
  python3 -c "print($ticks / $(getconf CLK_TCK))"
}

# The machine's CPU time so far: "busy idle steal" in ticks (steal: time the hypervisor gave
# this VM's CPUs to others; it varies from minute to minute here and explains most drift).
cpu_ticks() {
  awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat
}

# With pg_stat_statements loaded (shared_preload_libraries), how many of the run's turns were
# claimed by a statement of their own (the feeder's or a lane's claim: work recorded first and
# claimed after, the detour of BENCHMARKS.md's "The backlog detour") rather than by the webhook's
# own statement; else nothing is printed for it.
# (Created in the admin database and loaded by the server: an extension left from an earlier
# start without the library fails its reset.)
STATEMENTS=$(psql -X -At "$ADMIN" -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'
    AND current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'" 2>/dev/null || echo 0)
claims_share() {
  [ "$STATEMENTS" = 1 ] || return 0
  psql -X -At "$ADMIN" -c "SELECT 'claimed after recording: ' || COALESCE(sum(calls) FILTER (WHERE query LIKE 'SELECT * FROM wagate_claim(%'), 0)
      || ' of ' || COALESCE(sum(calls) FILTER (WHERE query LIKE 'SELECT * FROM wagate_record_lane(%'), 0) || ' webhooks'
    FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = '$BENCH_DB' AND s.toplevel"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $RATE msg/s for $DURATION s, one replica"
for spec in "$@"; do
  label=${spec%%=*}
  binary=${spec#*=}
  [ -x "$binary" ] || { echo "$label: no executable at $binary" >&2; exit 2; }
  psql -q -X -v ON_ERROR_STOP=1 "$ADMIN" \
    -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  [ "$STATEMENTS" = 1 ] && psql -X -q "$ADMIN" -c "SELECT pg_stat_statements_reset()" >/dev/null
  sleep 2
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  out=$(mktemp)
  # The machine's CPU split is read over the sending (the server starts in about a second);
  # the backends' CPU once the load has been sent (the pool's connections live on until the
  # bench stops the server).
  (sleep 1.5; cpu_ticks > "$out.t0"; sleep "$(python3 -c "print($DURATION - 1.5)")"
   cpu_ticks > "$out.t1"; sleep 0.7; backend_cpu > "$out.cpu") &
  WAGATE_BIN="$binary" "$TARGET/release/examples/e2e_bench" "$RATE" "$DURATION" "$RATE" \
    --replicas=1 --database="$DB_URL" > "$out" 2>&1 || true
  wait
  cpu=$(python3 -c "b = [int(x) for x in '$(cat "$out.t0")'.split()]; a = [int(x) for x in '$(cat "$out.t1")'.split()]
d = [y - x for x, y in zip(b, a)]; t = sum(d) or 1
print(f'busy {100 * d[0] / t:.0f}% idle {100 * d[1] / t:.0f}% steal {100 * d[2] / t:.0f}%')")
  summary=$(grep '^SUMMARY ' "$out" | sed 's/^SUMMARY replicas=1 database=postgres //' || echo "(no summary: the run failed)")
  server=$(grep -o 'CPU [0-9.]* s' "$out" | head -1 || true)
  sixths=$(grep 'by sixth' "$out" | sed 's/.*ms: //' || true)
  firsts=$(grep 'first 5 seconds' "$out" | sed 's/.*ms: //' || true)
  pg=$(python3 -c "print(f'{$(cat "$out.cpu") * 1000 / $MESSAGES:.2f}')")
  claims=$(claims_share)
  echo "$label | load $load | $cpu | $summary | ${claims:+$claims | }PostgreSQL $pg ms CPU per message | server $server | p50/p99 by sixth: $sixths | first 5 s: $firsts"
  rm -f "$out" "$out.cpu" "$out.t0" "$out.t1"
done
psql -q -X "$ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
