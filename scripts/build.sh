#!/usr/bin/env bash
# Builds the npm package into pkg/ (wasm-pack --target web, release profile, wasm-opt -Oz).
set -euo pipefail
cd "$(dirname "$0")/.."
# wasm-pack finds wasm-bindgen (pinned version, from bootstrap) and wasm-opt (npm binaryen) on PATH.
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
wasm-pack build --target web --release --out-dir pkg --out-name progress_outbox "$@"
# The package ships its README and a files list that wasm-pack does not know about.
cp README.md pkg/README.md 2>/dev/null || true
node scripts/size.mjs
