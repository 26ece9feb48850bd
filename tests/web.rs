//! Browser tests (wasm-bindgen-test): `wasm-pack test --headless --chrome` and `--firefox`.
//! Every test uses its own fresh database and deletes it at the end.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "web/support.rs"]
mod support;

#[path = "web/foundation.rs"]
mod foundation;

#[path = "web/processor.rs"]
mod processor;

#[path = "web/multi.rs"]
mod multi;
