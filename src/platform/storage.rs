//! `navigator.storage`: asking for persistent storage, and how much is used. Each call is
//! bounded (Firefox may show a permission prompt for `persist()`: it is never awaited at open).

use js_sys::Function;
use wasm_bindgen::JsValue;

use super::timer::within;
use super::{get, global};
use crate::domain::stats::StorageEstimate;

fn manager() -> JsValue {
    get(&get(&global(), "navigator"), "storage")
}

async fn call(name: &str) -> Option<JsValue> {
    let storage = manager();
    let f: Function = super::as_function(&get(&storage, name))?;
    let p = f.call0(&storage).ok()?;
    within(1_000, super::adopt(&p)).await?.ok()
}

/// Asks the browser to keep this origin's data under storage pressure (`persist()`), without
/// waiting for the answer.
pub fn request_persistence() {
    let storage = manager();
    if let Some(f) = super::as_function(&get(&storage, "persist")) {
        if let Ok(p) = f.call0(&storage) {
            // Swallow a rejection: unanswered prompts and refusals are normal.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = super::adopt(&p).await;
            });
        }
    }
}

/// `persisted()`: whether the browser agreed to keep this origin's data. `None` where unknown.
pub async fn persisted() -> Option<bool> {
    call("persisted").await?.as_bool()
}

/// `estimate()`: bytes used and allowed. `None` where unknown.
pub async fn estimate() -> Option<StorageEstimate> {
    let e = call("estimate").await?;
    Some(StorageEstimate { usage: get(&e, "usage").as_f64()?, quota: get(&e, "quota").as_f64()? })
}
