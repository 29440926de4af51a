#!/usr/bin/env bash
# Soak (issue 6): hold RATE messages per second for SECONDS end to end (the e2e bench: real
# `wagate serve` in release, fake Ollama and fake Graph API) while sampling the server's RSS
# (/proc/PID/status VmRSS) and open file descriptors (/proc/PID/fd) every 10 s into a CSV.
# At the end it prints first, max, last and the slope (overall and over the second half) of both,
# besides the bench's usual exactly-once check and latencies.
# Usage: bench/soak.sh [RATE] [SECONDS] [more e2e_bench arguments: USERS, --lean, ...]
#        (defaults: 200 messages/s for 600 s from 500 users)
# The CSV goes to $SOAK_CSV (default: target dir, soak-YYYYmmdd-HHMMSS.csv).
# Not run in CI (it takes minutes); exit code 1 when a message is not answered exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-200}
DURATION=${2:-600}
shift $(( $# < 2 ? $# : 2 ))
TARGET=${CARGO_TARGET_DIR:-target}
CSV=${SOAK_CSV:-$TARGET/soak-$(date +%Y%m%d-%H%M%S).csv}
echo "soak: $RATE msg/s for $DURATION s; samples in $CSV"
exec bench/e2e.sh "$RATE" "$DURATION" "$@" --sample="$CSV"
