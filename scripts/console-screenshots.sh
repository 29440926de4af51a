#!/usr/bin/env bash
# Regenerates the README's screenshots of the operator console (docs/console-*.png): starts a
# server with sample conversations (fake Graph API, fake model) and photographs each main
# screen in headless Chromium. Needs Debian's `chromium` and `chromium-driver`.
set -euo pipefail
cd "$(dirname "$0")/.."
export WAGATE_TEST_CHROMEDRIVER="${WAGATE_TEST_CHROMEDRIVER:-$(command -v chromedriver || true)}"
if [ -z "$WAGATE_TEST_CHROMEDRIVER" ]; then
    echo "chromedriver not found: apt-get install chromium chromium-driver" >&2
    exit 1
fi
export WAGATE_REQUIRE_EXTERNAL=1
cargo test --locked --test it console_screenshots -- --ignored --exact \
    console_screenshots::console_screenshots
ls -l docs/console-*.png
