//! Browser tests inside a service worker (no `window`, no `document`).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_service_worker);

#[path = "web/support.rs"]
mod support;

#[path = "web/contexts.rs"]
mod contexts;
