#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, and runs every test layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# The runner gives a whole test binary this long (its default, 20 s, is less than the suite takes).
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
step() { printf '\n== %s ==\n' "$*"; }
start=$(date +%s)

step "native: cargo test (src/domain)"
cargo test --quiet

step "build: wasm-pack (release) into pkg/"
bash scripts/build.sh

step "types: tsc --noEmit on tests/types/usage.ts"
tsc -p tests/types

step "browser: wasm-bindgen-test in headless Chrome"
wasm-pack test --headless --chrome

step "browser: wasm-bindgen-test in headless Firefox"
wasm-pack test --headless --firefox

step "end-to-end: node --test (playwright-core + Chromium against the dev API)"
node --test --test-concurrency=1 --test-reporter=spec tests/e2e/

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - start ))"
