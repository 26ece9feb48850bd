#!/usr/bin/env bash
# `npm run bench` (not part of `npm test`): builds the release package, runs bench/run.mjs (writes
# bench/results.json, bench/results.md, bench/chart.svg) and bench/size-breakdown.mjs (twiggy;
# writes bench/size-breakdown.txt). Arguments go to bench/run.mjs: --quick, --memory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# twiggy (the wasm size profiler) is a bench-only tool: installed here, only if missing.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v twiggy >/dev/null 2>&1; then
  echo "[bench] installing twiggy (cargo install twiggy)"
  cargo install twiggy
fi
BUILD_BOOTSTRAP=0 bash scripts/build.sh
node bench/run.mjs "$@"
node bench/size-breakdown.mjs
