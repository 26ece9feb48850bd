//! The one typed boundary to the browser. Everything the outbox needs from the platform passes
//! through here and comes back as Rust values or `Result<_, domain::Error>`: IndexedDB
//! ([`idb`]), `fetch` ([`http`]), the app's token function ([`token`]), Web Locks ([`locks`]),
//! `BroadcastChannel` ([`channel`]), `navigator.storage` ([`storage`]), timers ([`timer`]), clocks,
//! ids and the console (this file). Code above it never sees a `JsValue` it has to guess about.
//!
//! Every call reaches the platform through the global scope (never `window`), so the outbox runs
//! in pages, dedicated workers and service workers alike.

pub mod channel;
pub mod http;
pub mod idb;
pub mod locks;
pub mod storage;
pub mod timer;
pub mod token;

use js_sys::{Array, Reflect};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::domain::arg::Arg;
use crate::domain::batch::Network;
use crate::domain::config::LogLevel;
use crate::domain::time::TimeMs;

#[wasm_bindgen]
extern "C" {
    // `catch`: a console an app or a monitoring tool wrapped may throw; a log line is never worth
    // an exception unwinding through the outbox (it would skip Rust's cleanup mid-call).
    #[wasm_bindgen(catch, js_namespace = console, js_name = info)]
    fn console_info(s: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = console, js_name = warn)]
    fn console_warn(s: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = console, js_name = debug)]
    fn console_debug(s: &str) -> Result<(), JsValue>;
    // Looked up at each call, like `Date.now`: tests may replace either clock.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// The wall clock, `Date.now()`: what is stored and shown. It may jump (the user or the network
/// sets the device clock); nothing that waits relies on it alone.
pub fn now() -> TimeMs {
    js_sys::Date::now() as TimeMs
}

/// The monotonic clock, `performance.now()` (ms since this context started): what timers,
/// backoff and heartbeat watches measure elapsed time with.
pub fn mono() -> f64 {
    performance_now()
}

/// A fresh UUID v4 (`uuid`, drawing from `crypto.getRandomValues`).
pub fn new_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf).to_owned()
}

/// `globalThis`.
pub fn global() -> JsValue {
    js_sys::global().into()
}

/// A future of whatever a JS API or the app's code returned (a value, a promise, a thenable),
/// awaited through a promise of our own that resolves with it. `Promise.resolve(p)` hands a
/// native promise back as it is, so a promise whose own `then` (or `constructor`) throws, as a
/// hostile wrapper may return, made the `then` call of the await throw through the wasm, leaving
/// the instance broken for good; resolving our own promise with it turns that into a rejection.
pub fn adopt(value: &JsValue) -> wasm_bindgen_futures::JsFuture {
    let mut executor = |resolve: js_sys::Function, _reject: js_sys::Function| {
        let _ = resolve.call1(&JsValue::UNDEFINED, value);
    };
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::new(&mut executor))
}

/// The first `max` UTF-16 units of a JS string, copied into the wasm (a body of hundreds of
/// megabytes is never copied whole); `None` for anything else.
pub fn head(value: &JsValue, max: u32) -> Option<String> {
    let s = value.dyn_ref::<js_sys::JsString>()?;
    Some(if s.length() > max { s.slice(0, max).into() } else { s.into() })
}

/// `target[name]`, or `undefined` (also when a getter throws).
pub fn get(target: &JsValue, name: &str) -> JsValue {
    if !target.is_object() && !target.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `target[name] = value` on an object we made (cannot fail on plain objects).
pub fn set(target: &JsValue, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// `navigator.onLine`; `true` where the platform cannot tell.
pub fn is_online() -> bool {
    get(&get(&global(), "navigator"), "onLine").as_bool().unwrap_or(true)
}

/// `navigator.connection` as far as the outbox cares (saveData, 2g-class links).
pub fn network() -> Network {
    let c = get(&get(&global(), "navigator"), "connection");
    let kind = get(&c, "effectiveType").as_string();
    Network { save_data: get(&c, "saveData").as_bool().unwrap_or(false), slow: matches!(kind.as_deref(), Some("2g" | "slow-2g")) }
}

/// The `document`, in a page (workers have none).
fn document() -> JsValue {
    get(&global(), "document")
}

/// True in a page whose document is hidden (workers: never).
pub fn is_hidden_page() -> bool {
    get(&document(), "visibilityState").as_string().as_deref() == Some("hidden")
}

/// True in a page whose document is visible.
pub fn is_visible_page() -> bool {
    get(&document(), "visibilityState").as_string().as_deref() == Some("visible")
}

/// True in a worker or service worker (no document).
pub fn is_worker() -> bool {
    document().is_undefined()
}

#[wasm_bindgen]
extern "C" {
    // `Object.prototype.toString.call(v)` and `Date.prototype.getTime.call(v)`: realm-neutral
    // checks. The second is the brand check of a Date (it reads the internal time slot and
    // throws for anything without one; `Symbol.toStringTag` and `instanceof` can both lie). Both
    // can throw (a revoked Proxy): caught.
    #[wasm_bindgen(js_namespace = ["Object", "prototype", "toString"], js_name = call, catch)]
    fn object_tag(v: &JsValue) -> Result<String, JsValue>;
    #[wasm_bindgen(js_namespace = ["Date", "prototype", "getTime"], js_name = call, catch)]
    fn date_get_time(v: &JsValue) -> Result<f64, JsValue>;
}

/// The time of a `Date` from any realm (its internal slot, not `instanceof`: an iframe's or a
/// test driver's dates are dates too), or `None` for anything else. A plain object or an array
/// (every options object) is told by its tag: the brand check throws for them, and a throw costs
/// tens of microseconds on every call.
pub fn date_time(value: &JsValue) -> Option<f64> {
    if !value.is_object() {
        return None;
    }
    match object_tag(value).ok()?.as_str() {
        "[object Object]" | "[object Array]" | "[object Function]" => None,
        _ => date_get_time(value).ok(),
    }
}

/// An `Error` of any realm (its `Object.prototype.toString` tag): a plain object shaped like one
/// is not.
pub fn is_error(value: &JsValue) -> bool {
    value.is_object() && object_tag(value).is_ok_and(|t| t == "[object Error]")
}

/// Most items of an array argument read: one more than any method accepts (resetForRetry's
/// 10,000 ids), so a longer array is refused by its count without walking it all.
const MAX_ARRAY_READ: u32 = crate::domain::query::MAX_RESET_IDS as u32 + 1;

/// The longest string argument copied into the wasm (UTF-16 code units): far above any value
/// an option or argument takes (a token of a few kilobytes is the longest), so a string of
/// hundreds of megabytes is refused by its length without being copied.
pub(crate) const MAX_STRING_READ: u32 = 1 << 20;

/// The longest string item of an array argument copied into the wasm: ids are at most 256
/// characters and `backoffMs` takes numbers. (The bound per string alone let one long string
/// repeated 10,000 times in an array be copied 10,000 times, past the wasm's memory.)
const MAX_ITEM_READ: u32 = 1_024;

/// An array's items, its `length` read once and each index once (a Proxy whose length changes
/// between reads cannot slip a long array past a size check, nor make us walk millions). Items
/// that are arrays themselves are not walked: no argument takes one (an array that holds itself,
/// or one nested thousands deep, would otherwise exhaust the stack).
fn read_array(value: &JsValue) -> Result<Arg, JsValue> {
    let len = Reflect::get(value, &JsValue::from_str("length"))?.as_f64().unwrap_or(0.0);
    let n = if len.is_finite() && len > 0.0 { len.min(f64::from(MAX_ARRAY_READ)) as u32 } else { 0 };
    let mut items = Vec::with_capacity(n as usize);
    for i in 0..n {
        let item = Reflect::get_u32(value, i)?;
        items.push(if is_array(&item).unwrap_or(false) { Arg::Other("an array".into()) } else { read_string(&item, MAX_ITEM_READ) });
    }
    Ok(Arg::Array(items))
}

/// [`to_arg`], with strings longer than `max` described by their length, not copied.
fn read_string(value: &JsValue, max: u32) -> Arg {
    match value.dyn_ref::<js_sys::JsString>().map(js_sys::JsString::length) {
        Some(len) if len > max => too_long(len),
        _ => to_arg(value),
    }
}

/// A string argument of `len` characters, described instead of copied.
fn too_long(len: u32) -> Arg {
    Arg::LongStr(len)
}

/// Describes a JS value for pure validation (see [`Arg`]). Reads each value once.
pub fn to_arg(value: &JsValue) -> Arg {
    if value.is_undefined() {
        Arg::Undefined
    } else if value.is_null() {
        Arg::Null
    } else if let Some(n) = value.as_f64() {
        Arg::Number(n)
    } else if value.is_string() {
        let js = value.unchecked_ref::<js_sys::JsString>();
        let len = js.length();
        if len > MAX_STRING_READ {
            too_long(len)
        } else if js.is_valid_utf16() {
            Arg::Str(js.into())
        } else {
            // Converted, a lone surrogate would become U+FFFD: two different JS strings would
            // become one user id. Refused instead.
            Arg::Other("a string with an unpaired surrogate (not valid Unicode)".into())
        }
    } else if let Some(b) = value.as_bool() {
        Arg::Bool(b)
    } else if let Some(t) = date_time(value) {
        Arg::Date(t)
    } else if is_array(value).unwrap_or(false) {
        read_array(value).unwrap_or_else(|_| Arg::Other("an array that cannot be read".into()))
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

/// `Name: message` of a thrown JS value (only its kind for anything else: values may hold
/// secrets). Duck-typed: an error from another realm is not `instanceof` this realm's `Error`.
pub fn describe_error(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    match (get(e, "name").as_string(), get(e, "message").as_string()) {
        (Some(name), Some(message)) => [name.as_str(), ": ", message.as_str()].concat(),
        _ => "a non-Error value".into(),
    }
}

/// Most distinct keys listed: far more than there are options, so an object with more holds an
/// unknown one among them, and is refused without listing (and comparing) them all.
const MAX_KEYS: usize = 256;

/// The string keys an options object offers, enumerable or not (a class getter, a property
/// defined non-enumerable: each is read as an option, so each is checked): its own and those it
/// inherits, short of the chain's root (`Object.prototype` of whatever realm), without the
/// `constructor` of the prototypes it inherits from. `Err` when listing throws (a Proxy whose
/// `ownKeys` or `getPrototypeOf` trap throws).
pub fn keys(object: &JsValue) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut at = object.clone();
    // A chain longer than this is not an options object anyone writes by hand.
    for depth in 0..64 {
        if !at.is_object() {
            return Ok(out);
        }
        let next = prototype_of(&at).map_err(|e| describe_error(&e))?;
        // The root of an ordinary chain: a realm's `Object.prototype` (an object of our own
        // with no prototype, `Object.create(null)`, is checked like any other).
        if depth > 0 && !next.is_object() && has_own(&at, "isPrototypeOf").unwrap_or(false) {
            return Ok(out);
        }
        for k in own_names(&at).map_err(|e| describe_error(&e))?.iter().filter_map(|k| key_name(&k)) {
            if (depth > 0 && k == "constructor") || out.contains(&k) {
                continue;
            }
            out.push(k);
            if out.len() >= MAX_KEYS {
                return Ok(out);
            }
        }
        at = next;
    }
    Err("its prototype chain is longer than 64 objects".into())
}

/// A property name as listed: a name longer than any option's is shortened (it is unknown, and
/// a name of megabytes is not copied whole; the "…" keeps it from matching an option).
fn key_name(k: &JsValue) -> Option<String> {
    const MAX: u32 = 64;
    let js = k.dyn_ref::<js_sys::JsString>()?;
    if js.length() <= MAX {
        return js.as_string();
    }
    Some(format!("{}… ({} characters)", String::from(js.slice(0, MAX)), js.length()))
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Object, js_name = getOwnPropertyNames, catch)]
    fn own_names(object: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = hasOwn, catch)]
    fn has_own(object: &JsValue, key: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = getPrototypeOf, catch)]
    fn prototype_of(object: &JsValue) -> Result<JsValue, JsValue>;
    // Throws on a revoked Proxy: caught.
    #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
    fn is_array(value: &JsValue) -> Result<bool, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = assign, catch)]
    fn object_assign(target: &JsValue, source: &JsValue) -> Result<JsValue, JsValue>;
}

/// Copies `source`'s own enumerable fields onto `target`; `false` if that threw (a hostile getter).
pub fn assign(target: &JsValue, source: &JsValue) -> bool {
    object_assign(target, source).is_ok()
}

/// Reads `object[key]` for validation: `Err` (the getter's error, described) when reading throws.
pub fn read(object: &JsValue, key: &str) -> Result<JsValue, String> {
    Reflect::get(object, &JsValue::from_str(key)).map_err(|e| describe_error(&e))
}

/// Calls `f` with no receiver; `Err` with the thrown value described.
pub fn call0(f: &js_sys::Function) -> Result<JsValue, String> {
    f.call0(&JsValue::UNDEFINED).map_err(|e| describe_error(&e))
}

/// Calls `f(arg)` with no receiver, ignoring what it returns (subscribers, app callbacks):
/// `Err` with the thrown value described.
pub fn call1(f: &js_sys::Function, arg: &JsValue) -> Result<(), String> {
    f.call1(&JsValue::UNDEFINED, arg).map(drop).map_err(|e| describe_error(&e))
}

/// Casts a value known to be a function (checked with `typeof`, not `instanceof`: functions from
/// another realm are functions too).
pub fn as_function(value: &JsValue) -> Option<js_sys::Function> {
    value.is_function().then(|| value.clone().unchecked_into())
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
    let _ = match level {
        LogLevel::Warn => console_warn(&line),
        LogLevel::Info => console_info(&line),
        _ => console_debug(&line),
    };
}

/// Resolves a possibly relative URL against this context's location (a page's, a worker's), as
/// `fetch` will: `Err` says why it is not a URL. Where there is no location, it is kept as given.
pub fn resolve_url(url: &str) -> Result<String, String> {
    let base = get(&get(&global(), "location"), "href").as_string();
    let parsed = match &base {
        Some(b) => web_sys::Url::new_with_base(url, b),
        None => web_sys::Url::new(url),
    };
    match parsed {
        // fetch would refuse any other scheme at every upload, as an answerless (never counted)
        // failure: refuse it now.
        Ok(u) if u.protocol() != "http:" && u.protocol() != "https:" => Err(["only http: and https: URLs can be uploaded to, not ", &u.protocol()].concat()),
        // fetch refuses a URL with credentials in it, at every upload: refuse it now. (Send
        // credentials with the `token` option; the message never repeats them.)
        Ok(u) if !u.username().is_empty() || !u.password().is_empty() => {
            Err("it holds credentials (user:password@), which fetch refuses; pass them with the token option".into())
        }
        Ok(u) => {
            // fetch never sends a fragment: dropped, so no URL built from this one carries it.
            u.set_hash("");
            Ok(u.href())
        }
        Err(_) if base.is_none() => Ok(url.to_owned()),
        Err(e) => Err(describe_error(&e)),
    }
}
