#!/usr/bin/env bash
# `npm run bench`: builds the release package and runs bench/run.mjs (not part of `npm test`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh
node bench/run.mjs "$@"
