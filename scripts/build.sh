#!/usr/bin/env bash
# Builds the npm package into pkg/ (wasm-pack --target web, release profile, wasm-opt -Oz), then
# minifies the JS glue. Size is a product figure: see "Benchmarks" in the README.
#   BUILD_STD=0  build with the prebuilt standard library (skips the size build below)
#   BUILD_BOOTSTRAP=0  skip the bootstrap below (for callers that have just run it)
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh clone has none of the tools (wasm-pack, wasm-bindgen, terser, wasm-opt): install what is
# missing first, browsers aside. With everything present this takes a second or two.
if [ "${BUILD_BOOTSTRAP:-1}" != "0" ]; then BOOTSTRAP_BROWSERS=0 bash scripts/bootstrap.sh; fi
# One build at a time (several test runs may ask for one): they share target/ and pkg/.
mkdir -p target && exec 9>target/.build.lock && flock 9
# wasm-pack finds wasm-bindgen (pinned version, from bootstrap) and wasm-opt (npm binaryen) on PATH.
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# The size build: the standard library is rebuilt with the `immediate-abort` panic strategy and
# without panic locations, so no panic message formatting is linked (a panic traps either way:
# the prebuilt std with panic=abort formats a message nobody can see, then traps). Those switches
# are unstable; RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain for this build only, as
# the Linux kernel and Firefox do. It needs the rust-src component (scripts/bootstrap.sh adds it).
# Any failure falls back to the plain build: same behaviour, about 9 KB more gzipped wasm.
size_build() {
  [ "${BUILD_STD:-1}" != "0" ] || return 1
  [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ] || return 1
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target/size" \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
    wasm-pack build --target web --release --out-dir pkg --out-name progress_outbox "$@" . -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
}
if ! size_build "$@"; then
  [ "${BUILD_STD:-1}" = "0" ] || echo "[build] size build unavailable (no rust-src, or it failed): building with the prebuilt standard library"
  wasm-pack build --target web --release --out-dir pkg --out-name progress_outbox "$@"
fi

# The glue as shipped: comments out, local names mangled; export and import names stay (the
# wasm imports are object keys, which terser never renames). The readable API is types in the .d.ts.
find pkg -name '*.js' -print0 | while IFS= read -r -d '' f; do
  terser "$f" --module --compress --mangle --output "$f"
done
# pkg/ as the npm package: the entry module (Outbox.open loads the wasm on first use), both licences,
# the README with absolute image URLs, a package.json with an exports map (scripts/pack.mjs).
node scripts/pack.mjs --prepare
# Every module the package loads (its JS snippets have hashed paths): the demo's service worker
# precaches this list so the app opens offline.
(cd pkg && find . -type f \( -name '*.js' -o -name '*.wasm' \) | sed 's|^\./|/pkg/|' | sort | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim().split("\n"))))' > files.json)
node scripts/size.mjs
