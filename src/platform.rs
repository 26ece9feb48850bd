//! The few things the library needs from the JS platform, always reached through the global
//! scope (never `window`), so the outbox runs in pages, dedicated workers and service workers.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::domain::arg::Arg;
use crate::domain::config::LogLevel;
use crate::domain::time::TimeMs;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = info)]
    fn console_info(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = debug)]
    fn console_debug(s: &str);
}

/// `Date.now()`.
pub fn now() -> TimeMs {
    js_sys::Date::now() as TimeMs
}

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = newId)]
    fn new_id_js() -> String;
    #[wasm_bindgen(js_name = dateTime)]
    fn date_time_js(value: &JsValue) -> Option<f64>;
}

/// The time of a `Date` from any realm (`instanceof Date` misses an iframe's or a test
/// driver's dates), or `None` for anything else.
pub fn date_time(value: &JsValue) -> Option<f64> {
    if value.is_object() {
        date_time_js(value)
    } else {
        None
    }
}

/// A fresh UUID v4 (`crypto.randomUUID`, or `crypto.getRandomValues` where that is missing).
pub fn new_id() -> String {
    new_id_js()
}

/// `globalThis`.
pub fn global() -> JsValue {
    js_sys::global().into()
}

/// `globalThis[name]`, or `undefined`.
pub fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `target[name] = value`, ignoring the impossible failure on plain objects.
pub fn set(target: &JsValue, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// `navigator.onLine`; `true` where the platform cannot tell.
pub fn is_online() -> bool {
    let navigator = get(&global(), "navigator");
    if navigator.is_undefined() {
        return true;
    }
    get(&navigator, "onLine").as_bool().unwrap_or(true)
}

/// Describes a JS value for pure validation (see [`Arg`]).
pub fn to_arg(value: &JsValue) -> Arg {
    if value.is_undefined() {
        Arg::Undefined
    } else if value.is_null() {
        Arg::Null
    } else if let Some(n) = value.as_f64() {
        Arg::Number(n)
    } else if let Some(s) = value.as_string() {
        Arg::Str(s)
    } else if let Some(b) = value.as_bool() {
        Arg::Bool(b)
    } else if let Some(t) = date_time(value) {
        Arg::Date(t)
    } else if Array::is_array(value) {
        Arg::Array(Array::from(value).iter().map(|v| to_arg(&v)).collect())
    } else if value.is_function() {
        Arg::Other("a function".into())
    } else if value.is_bigint() {
        Arg::Other("a BigInt".into())
    } else if value.is_symbol() {
        Arg::Other("a Symbol".into())
    } else {
        Arg::Other("an object".into())
    }
}

/// `Name: message` of a thrown JS value (its type, for non-errors: values may hold secrets).
/// Duck-typed, like the type checks here: an error from another realm (an iframe, a test
/// driver's script) is not `instanceof` this realm's `Error`.
pub fn describe_error(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    match (get(e, "name").as_string(), get(e, "message").as_string()) {
        (Some(name), Some(message)) if e.is_object() => format!("{name}: {message}"),
        _ => "a non-Error value".into(),
    }
}

/// The own enumerable keys of a plain object (`Object.keys`).
pub fn keys(object: &JsValue) -> Vec<String> {
    // `is_object`, not `instanceof Object`: options built in another realm are objects too.
    if object.is_object() {
        Object::keys(object.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()).collect()
    } else {
        Vec::new()
    }
}

/// Console output at a configured level. Messages never include tokens.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    /// The configured level.
    pub level: LogLevel,
}

impl Log {
    /// A lifecycle line (`log: "info"` and `"debug"`).
    pub fn info(&self, message: impl FnOnce() -> String) {
        if self.level >= LogLevel::Info {
            emit(LogLevel::Info, message());
        }
    }

    /// Detail only useful when debugging (`log: "debug"`).
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.level >= LogLevel::Debug {
            emit(LogLevel::Debug, message());
        }
    }

    /// A failure that needs attention (every level but `"off"`).
    pub fn warn(&self, message: impl FnOnce() -> String) {
        if self.level >= LogLevel::Warn {
            emit(LogLevel::Warn, message());
        }
    }
}

// One non-generic place that writes, so each log call site costs only its own message.
#[inline(never)]
fn emit(level: LogLevel, message: String) {
    let line = ["[progress-outbox] ", &message].concat();
    match level {
        LogLevel::Warn => console_warn(&line),
        LogLevel::Info => console_info(&line),
        _ => console_debug(&line),
    }
}
