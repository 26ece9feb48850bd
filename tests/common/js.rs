//! Reading and writing JS values, waiting and polling: what every browser test crate (web,
//! worker, service worker, features, failures) needs alike. Included by each crate's support
//! module (`#[path = "../common/js.rs"] mod js;` there) and re-exported from it.

use js_sys::{Array, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = "export function sleepMs(ms) { return new Promise((r) => setTimeout(r, ms)); }")]
extern "C" {
    #[wasm_bindgen(js_name = sleepMs)]
    fn sleep_ms(ms: u32) -> Promise;
}

/// Waits `ms` milliseconds (a timer of the page, worker or service worker).
pub async fn sleep(ms: u32) {
    let _ = JsFuture::from(sleep_ms(ms)).await;
}

/// Polls `check` every 10 ms until it returns true or `timeout_ms` passes.
pub async fn eventually<F, Fut>(timeout_ms: u32, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut waited = 0;
    while !check().await {
        if waited >= timeout_ms {
            panic!("timed out after {timeout_ms} ms waiting for: {what}");
        }
        sleep(10).await;
        waited += 10;
    }
}

/// `v[key]` (`undefined` when it cannot be read).
pub fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn set(v: &JsValue, key: &str, value: &JsValue) {
    Reflect::set(v, &JsValue::from_str(key), value).unwrap();
}

/// JSON of a value, for messages.
pub fn show(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    JSON::stringify(v).ok().and_then(|s| s.as_string()).unwrap_or_else(|| format!("{v:?}"))
}

pub fn num(v: &JsValue, key: &str) -> f64 {
    get(v, key).as_f64().unwrap_or_else(|| panic!("{key} is not a number in {}", show(v)))
}

pub fn string(v: &JsValue, key: &str) -> String {
    get(v, key).as_string().unwrap_or_else(|| panic!("{key} is not a string in {}", show(v)))
}

pub fn opt_string(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

pub fn array(v: &JsValue) -> Vec<JsValue> {
    Array::from(v).to_vec()
}

/// An error's message (or the value itself when it has none).
pub fn message(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// Hides `navigator.locks` (as in browsers without Web Locks) until the returned restore runs,
/// or 30 s pass (a failed test never leaves it to the next).
pub fn hide_web_locks() -> js_sys::Function {
    js_sys::Function::new_no_args(
        "const d = Object.getOwnPropertyDescriptor(Navigator.prototype, 'locks');
         Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined });
         const restore = () => { clearTimeout(timer); Object.defineProperty(Navigator.prototype, 'locks', d); };
         const timer = setTimeout(restore, 30000);
         return restore;",
    )
    .call0(&JsValue::NULL)
    .unwrap()
    .unchecked_into()
}
