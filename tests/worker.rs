//! Browser tests inside a dedicated worker (no `window`).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "web/support.rs"]
mod support;

#[path = "web/contexts.rs"]
mod contexts;
