#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, and runs every test layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
step() { printf '\n== %s ==\n' "$*"; }
start=$(date +%s)

step "lint: cargo fmt --check, cargo clippy -D warnings (native and wasm32)"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --target wasm32-unknown-unknown -- -D warnings

step "native: cargo test (src/domain)"
cargo test --quiet

step "dev API: node --test tests/server/"
node --test --test-reporter=dot tests/server/

step "build: wasm-pack (release) into pkg/"
bash scripts/build.sh

step "types: tsc --strict on tests/types/ (a usage file, wrong calls marked @ts-expect-error, errors)"
tsc -p tests/types

# wasm-bindgen-test-runner 0.2.130 sometimes never starts the service-worker suite in Firefox
# (2 to 4 of 10 runs here): the page's worker registration is left with no installing, waiting or
# active worker, a second register() in that page never settles, and the runner reports "Failed
# to detect test as having been run" at its timeout. The runner's server still serves every file
# of the suite in that state: the registration hangs inside Firefox, before the suite starts.
# That failure, and only that one (no test started), is retried, up to 6 runs in all; each test
# binary runs on its own with a timeout sized to it, so a stuck start costs about half a minute.
#
# The runner's own timeout is not always enough: a page can stay at "Loading scripts..." (the
# suite never started) with the runner waiting on it for good (seen in Chrome, features suite, in
# 2 of 4 clean-clone runs; cause unknown). A watchdog kills the whole run (its own process group:
# wasm-pack, cargo, the runner, the driver and the browser) when the runner has opened the
# browser (`Running headless tests`) yet no suite has started (`running N tests`) 45 s later
# (a start takes 1-2 s), or two minutes past the suite's timeout, and says so in the words of a
# suite that never started, so the retry below applies.
suite_run() { # browser, test binary, timeout (s)
  local limit=$(($3 + 120)) pid tailer watchdog rc out
  out=$(mktemp)
  WASM_BINDGEN_TEST_TIMEOUT=$3 setsid wasm-pack test --headless "--$1" --test "$2" >>"$out" 2>&1 </dev/null &
  pid=$!
  tail -n +1 -f --pid="$pid" "$out" &
  tailer=$!
  (
    waited=0 opened=""
    while sleep 5; do
      waited=$((waited + 5))
      [ -z "$opened" ] && grep -q "^Running headless tests" "$out" && opened=$waited
      why=""
      if [ -n "$opened" ] && [ $((waited - opened)) -ge "${WATCHDOG_START_S:-45}" ] && ! grep -qE "^running [0-9]+ test" "$out"; then
        why="the $1 $2 suite had not started ${WATCHDOG_START_S:-45} s after the browser opened"
      elif [ "$waited" -ge "$limit" ]; then
        why="the $1 $2 run was stuck for ${limit} s"
      fi
      if [ -n "$why" ]; then
        if kill -0 "$pid" 2>/dev/null; then
          # What was running when it stuck (the cause of the stuck start is still unknown): the
          # browsers, drivers and runners, busiest first.
          { echo "[watchdog] processes at the kill:"; ps -eo pid,ppid,etimes,pcpu,rss,args --sort=-pcpu | grep -E "[f]irefox|[g]eckodriver|[c]hrom|[w]asm-bindgen-test" | cut -c1-200 | head -20; } >>"$out" 2>&1 || true
          echo "Failed to detect test as having been run (watchdog: $why; killed)" >>"$out"
        fi
        sleep 2 # for the output's reader
        kill -- "-$pid" 2>/dev/null
        exit 0
      fi
    done
  ) </dev/null >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  wait "$tailer" 2>/dev/null
  rm -f "$out"
  return "$rc"
}

browser_suite() { # browser, test binary, timeout (s)
  local log attempt
  log=$(mktemp)
  for attempt in 1 2 3 4 5 6; do
    if suite_run "$1" "$2" "$3" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then rm -f "$log"; return 0; fi
    if ! grep -q "Failed to detect test as having been run" "$log" || grep -qE "^running [0-9]+ test|^test .* \.\.\. |panicked at" "$log"; then break; fi
    echo "[test] the runner never started the $1 $2 suite (attempt $attempt); running it again"
  done
  rm -f "$log"
  return 1
}

for browser in chrome firefox; do
  step "browser: wasm-bindgen-test in headless $browser (page, dedicated worker, service worker)"
  # The page suite takes ~20 s; the worker suites about one.
  # features before failures: the stuck start has only ever hit the suite run right after the
  # failures suite (features, in Chrome and then in Firefox); this order tells whether it is that
  # suite, or the place after failures, that sticks.
  browser_suite "$browser" web 300
  browser_suite "$browser" features 300
  browser_suite "$browser" failures 300
  browser_suite "$browser" worker 60
  browser_suite "$browser" service_worker 30
done

step "end-to-end: node --test (playwright-core + Chromium, geckodriver + Firefox, against the dev API)"
node --test --test-concurrency=1 --test-reporter=spec tests/e2e/

step "consumers: the packed tarball installed into Vite, webpack, esbuild and a plain page, in Chromium against the dev API"
node --test --test-reporter=spec tests/consumers/consumers.test.mjs

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - start ))"
