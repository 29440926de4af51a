#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      default: 60 seconds, all targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly-only flags
# (-Zsanitizer=address, -Cpasses=sancov-module); a stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1, so no nightly is needed. Corpora grow in fuzz/corpus/TARGET (git-ignored)
# and are seeded on every run from the fixtures and, when present, the shared webhook corpus
# (WAGATE_WEBHOOK_CORPUS, default /work/shared/corpus/webhooks). A crash leaves its input in
# fuzz/artifacts/TARGET/; replay it with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE`.
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail

seconds=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
all_targets=(webhook_parse signature_verify config_load format_markdown split_reply pii_redact)
targets=("${@:-${all_targets[@]}}")
shared_corpus=${WAGATE_WEBHOOK_CORPUS:-/work/shared/corpus/webhooks}

export RUSTC_BOOTSTRAP=1
cd "$here"

# Seeds: real inputs give the fuzzer a head start over random bytes.
seed() {
    local target=$1
    local dir="$here/corpus/$target"
    mkdir -p "$dir"
    case $target in
        webhook_parse)
            cp -n "$root"/tests/fixtures/webhooks/*.json "$dir"/
            if [ -d "$shared_corpus" ]; then
                cp -n "$shared_corpus"/*.json "$dir"/
            fi
            ;;
        config_load)
            # One input holds channels.yaml, a `---8<---` line, then one agent file.
            for config in "$root"/tests/fixtures/config/*/; do
                for agent in "$config"agents/*.agent.yaml; do
                    [ -f "$agent" ] || continue
                    {
                        cat "$config/channels.yaml"
                        printf '\n---8<---\n'
                        cat "$agent"
                    } >"$dir/$(basename "$config")-$(basename "$agent" .agent.yaml)"
                done
            done
            ;;
        format_markdown | split_reply)
            for doc in "$root"/*.md "$root"/tests/fixtures/webhooks/README.md; do
                [ -f "$doc" ] && cp -n "$doc" "$dir/"
            done
            ;;
        pii_redact)
            cp -n "$here"/seeds/pii_redact/* "$dir"/
            ;;
    esac
}

dict_for() {
    case $1 in
        webhook_parse) echo "-dict=$here/dicts/webhook.dict" ;;
        config_load) echo "-dict=$here/dicts/config.dict" ;;
        format_markdown | split_reply) echo "-dict=$here/dicts/markdown.dict" ;;
    esac
}

cargo fuzz build -O

crashed=()
for target in "${targets[@]}"; do
    seed "$target"
    echo "== $target: ${seconds}s"
    # -timeout: an input that takes 10 s is a hang, and a hang is a finding too.
    # shellcheck disable=SC2046
    if ! cargo fuzz run -O "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        $(dict_for "$target"); then
        crashed+=("$target")
    fi
done

if [ ${#crashed[@]} -gt 0 ]; then
    echo "crashed: ${crashed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes in ${#targets[@]} targets, ${seconds}s each"
