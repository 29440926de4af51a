# Sourced by the bench scripts. Needs BIN (cargo's release dir), WORK (a scratch dir) and PORT.

# A minimal config under $WORK/config: signature checked, one agent for every number.
write_config() {
  mkdir -p "$WORK/config/agents"
  cat > "$WORK/config/channels.yaml" <<YAML
channels:
  whatsapp:
    verify_token: bench
    app_secret: bench-secret
    default_agent: bench
YAML
  cat > "$WORK/config/agents/bench.agent.yaml" <<YAML
apiVersion: astromesh/v1
kind: Agent
metadata: {name: bench}
spec:
  model:
    primary: {provider: ollama, model: "llama3.1:8b", endpoint: "http://127.0.0.1:9"}
YAML
}

# The real server (wagate::server::run) with the log-only turn handler, on a fresh inbox;
# sets SERVER to its pid. DURABILITY=normal opts into synchronous=NORMAL.
start_server() {
  rm -rf "$WORK/data"
  RUST_LOG=${SERVER_LOG:-warn} "$BIN/examples/loadgen" serve "$WORK/config" "$WORK/data" "127.0.0.1:$PORT" ${DURABILITY:-} &
  SERVER=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}

# What else the machine is doing: load average, and how long a 4 KB write + fsync takes now
# in $WORK (the inbox's disk); both bound what the benchmark can show.
probe_machine() {
  python3 - "$WORK/fsync-probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
os.write(fd, b"\0" * 4096 * 64); os.fsync(fd)
t = []
for i in range(200):
    s = time.perf_counter(); os.pwrite(fd, b"x" * 4096, (i % 64) * 4096); os.fsync(fd)
    t.append(time.perf_counter() - s)
os.close(fd); os.unlink(sys.argv[1]); t.sort()
print("machine: load average %s; 4 KB write+fsync median %.0f us, p90 %.0f us"
      % (" ".join(open("/proc/loadavg").read().split()[:3]), t[100] * 1e6, t[180] * 1e6))
PY
}

# The PostgreSQL server of the PostgreSQL benchmarks: sets ADMIN (an administrator's URL, from
# WAGATE_BENCH_POSTGRES_URL, else WAGATE_TEST_POSTGRES_URL) and DB_URL (the same server, database
# $1). Exits 2 saying what to do when neither is set or psql is missing.
postgres_bench_urls() {
  ADMIN=${WAGATE_BENCH_POSTGRES_URL:-${WAGATE_TEST_POSTGRES_URL:-}}
  if [ -z "$ADMIN" ]; then
    echo "set WAGATE_BENCH_POSTGRES_URL to an administrator's URL of a PostgreSQL server" >&2
    echo "(or: source .ci/components.sh, which starts a throwaway cluster and sets WAGATE_TEST_POSTGRES_URL)" >&2
    exit 2
  fi
  command -v psql >/dev/null || { echo "psql is needed (Debian: apt-get install postgresql-client)" >&2; exit 2; }
  DB_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ADMIN" "$1")
}
