#!/usr/bin/env bash
# Builds the npm package into pkg/ (wasm-pack --target web, release profile, wasm-opt -Oz).
set -euo pipefail
cd "$(dirname "$0")/.."
# wasm-pack finds wasm-bindgen (pinned version, from bootstrap) and wasm-opt (npm binaryen) on PATH.
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
wasm-pack build --target web --release --out-dir pkg --out-name progress_outbox "$@"
cp README.md pkg/README.md 2>/dev/null || true
# Every module the package loads (its JS snippets have hashed paths): the demo's service worker
# precaches this list so the app opens offline.
(cd pkg && find . -type f \( -name '*.js' -o -name '*.wasm' \) | sed 's|^\./|/pkg/|' | sort | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim().split("\n"))))' > files.json)
node scripts/size.mjs
