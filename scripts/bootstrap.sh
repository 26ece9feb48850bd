#!/usr/bin/env bash
# Idempotent bootstrap: installs whatever the build and the tests need and is missing.
# Run by `npm start`, `npm test` and `npm run bench`. With everything present it takes seconds.
#   BOOTSTRAP_BROWSERS=0  skip the browser installs (enough for `npm start`)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
export PATH="$HOME/.cargo/bin:$PATH"

# The wasm-bindgen version is pinned with "=X" in Cargo.toml; the CLI must match it exactly.
WB_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml | head -1)
[ -n "$WB_VERSION" ] || { echo "bootstrap: could not read the pinned wasm-bindgen version from Cargo.toml" >&2; exit 1; }

have cargo || { echo "bootstrap: cargo is missing; install Rust with rustup (https://rustup.rs) and re-run" >&2; exit 1; }
have node && have npm || { echo "bootstrap: Node.js 20+ and npm are required" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The size build (scripts/build.sh) rebuilds std for wasm32 from rust-src; without it the build
# falls back to the prebuilt std, so a failure here is not fatal.
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  say "adding the rust-src component (the release build rebuilds std for size)"
  rustup component add rust-src || say "rust-src unavailable: release builds use the prebuilt std (about 9 KB more gzipped wasm)"
fi

if ! have wasm-pack; then
  say "installing wasm-pack (cargo install, about 3 minutes)"
  cargo install wasm-pack
fi

if ! have wasm-bindgen || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (must equal the pinned wasm-bindgen)"
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# npm packages (binaryen provides wasm-opt; playwright-core drives Chromium). Reinstall when the lock changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

if [ "${BOOTSTRAP_BROWSERS:-1}" != "0" ]; then
  missing_pkgs=()
  [ -x /usr/bin/chromium ] || missing_pkgs+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing_pkgs+=(chromium-driver)
  have firefox || have firefox-esr || missing_pkgs+=(firefox-esr)
  if [ ${#missing_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
      say "installing ${missing_pkgs[*]} from Debian"
      apt-get update -qq || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}"
    else
      echo "bootstrap: missing browsers: ${missing_pkgs[*]}. Install them (Debian: sudo apt-get install ${missing_pkgs[*]}) and re-run." >&2
      exit 1
    fi
  fi
  if ! have geckodriver; then
    say "installing geckodriver (cargo install, about 2 minutes)"
    cargo install geckodriver
  fi
fi
say "ready (wasm-bindgen $WB_VERSION, wasm-pack $(wasm-pack --version | awk '{print $2}'))"
