//! Browser tests of the features of issues 12 and 13 (wasm-bindgen-test, `wasm-pack test
//! --headless --chrome --test features`, and `--firefox`): metrics, edits and deletes with
//! per-entry ordering, the schema upgrade from v3, batches with adaptive size and network-aware
//! limits, and health. The outbox is driven through its JS methods against a scripted fake API
//! (tests/features/harness.js); every test uses its own fresh database and deletes it at the end.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "features/support.rs"]
mod support;

#[path = "features/metrics.rs"]
mod metrics;

#[path = "features/edits.rs"]
mod edits;

#[path = "features/ordering.rs"]
mod ordering;

#[path = "features/schema.rs"]
mod schema;

#[path = "features/batches.rs"]
mod batches;

#[path = "features/health.rs"]
mod health;

#[path = "features/regressions.rs"]
mod regressions;
