//! # progress-outbox
//!
//! A transactional outbox for health data in browser PWAs. `save` writes a measurement and its
//! outbox event to IndexedDB in one transaction; a background processor uploads pending events
//! with `fetch`, retries with backoff and reports exactly where every event stands.
//!
//! Layout: [`domain`] is pure Rust (rules, status machine, retry policy; tested natively),
//! `platform` the one typed boundary to the browser, `store` IndexedDB through idb, `sync` the
//! processor, transport and leadership, and `bindings` the only `#[wasm_bindgen]` surface. See
//! README.md for the JS API and the wire protocol.
#![deny(missing_docs)]

pub mod domain;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
pub mod outbox;
#[cfg(target_arch = "wasm32")]
pub mod platform;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
pub mod sync;

#[cfg(target_arch = "wasm32")]
pub use bindings::{is_outbox_error, Outbox};
