//! Helpers of the failure-mode suite. Only the `Outbox` methods every version has are called
//! (open, start, stop, saveWeight, stats, events, processNow, entries, close, isLeader), and every
//! wait is bounded: a call that never settles fails its test instead of hanging the suite.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use js_sys::{Object, Promise};
use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[path = "../common/js.rs"]
mod js;
pub use js::*;

#[wasm_bindgen(module = "/tests/failures/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = setClockOffset)]
    pub fn set_clock_offset(ms: f64);
    #[wasm_bindgen(js_name = stubFetch)]
    pub fn stub_fetch(responses: &JsValue, fallback: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = jsonValue)]
    pub fn json(text: &str) -> JsValue;
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_promise(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = isInstance)]
    pub fn is_instance(value: &JsValue, ctor: &str) -> bool;
    #[wasm_bindgen(js_name = tokenSwitch)]
    pub fn token_switch(token: &str) -> JsValue;
    #[wasm_bindgen(js_name = setOnline)]
    pub fn set_online(value: bool);
    #[wasm_bindgen(js_name = restoreOnline)]
    pub fn restore_online();
    #[wasm_bindgen(js_name = pageErrorsSince)]
    pub fn page_errors_since(n: u32) -> js_sys::Array;
    #[wasm_bindgen(js_name = pageErrorCount)]
    pub fn page_error_count() -> u32;
    #[wasm_bindgen(js_name = captureConsole)]
    pub fn capture_console() -> JsValue;
    #[wasm_bindgen(js_name = holdLock)]
    pub fn hold_lock(name: &str, steal: bool) -> JsValue;
    #[wasm_bindgen(js_name = delayLocksQuery)]
    pub fn delay_locks_query() -> JsValue;
    #[wasm_bindgen(js_name = hangLocksQuery)]
    pub fn hang_locks_query(on: bool);
    #[wasm_bindgen(js_name = heldLocks)]
    pub fn held_locks() -> Promise;
    #[wasm_bindgen(js_name = rawGetAll)]
    pub fn raw_get_all(db: &str, store: &str) -> Promise;
    #[wasm_bindgen(js_name = rawGet)]
    pub fn raw_get(db: &str, store: &str, key: &str) -> Promise;
    #[wasm_bindgen(js_name = rawPut)]
    pub fn raw_put(db: &str, store: &str, value: &JsValue, key: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = rawDelete)]
    pub fn raw_delete(db: &str, store: &str, key: &str) -> Promise;
    #[wasm_bindgen(js_name = rawKeys)]
    pub fn raw_keys(db: &str, store: &str) -> Promise;
    #[wasm_bindgen(js_name = rawStores)]
    pub fn raw_stores(db: &str) -> Promise;
    #[wasm_bindgen(js_name = createLegacyDb)]
    pub fn create_legacy_db(db: &str, entries: &JsValue) -> Promise;
    pub fn gate(db: &str) -> Promise;
    #[wasm_bindgen(js_name = nextTransaction)]
    pub fn next_transaction(store: &str, mode: &str) -> Promise;
    #[wasm_bindgen(js_name = failStateReads)]
    pub fn fail_state_reads(state: u32) -> js_sys::Function;
    #[wasm_bindgen(js_name = failNextPut)]
    pub fn fail_next_put(store: &str);
    #[wasm_bindgen(js_name = failNextPut)]
    pub fn fail_next_put_as(store: &str, key: &str, name: &str) -> js_sys::Function;
    #[wasm_bindgen(js_name = swallowOpenSuccess)]
    pub fn swallow_open_success() -> js_sys::Function;
    #[wasm_bindgen(js_name = failNextTransaction)]
    pub fn fail_next_transaction(store: &str, mode: &str);
    #[wasm_bindgen(js_name = holdTransaction)]
    pub fn hold_transaction(db: &str, ms: u32) -> Promise;
    #[wasm_bindgen(js_name = stubbornConnection)]
    pub fn stubborn_connection(db: &str, version: u32) -> Promise;
    #[wasm_bindgen(js_name = wipeDb)]
    pub fn wipe_db(db: &str, ms: u32) -> Promise;
    #[wasm_bindgen(js_name = dispatchFreeze)]
    pub fn dispatch_freeze();
    #[wasm_bindgen(js_name = deleteDb)]
    pub fn delete_db(db: &str) -> Promise;
}

/// A database name no other test uses.
pub fn fresh_db(tag: &str) -> String {
    format!("fail-{tag}-{}", uuid::Uuid::new_v4())
}

/// `f`'s output, or `None` if it takes longer than `ms` (then `f` is dropped).
pub async fn within<F: Future>(ms: u32, f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut timer = pin!(JsFuture::from(sleep_promise(ms)));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            Poll::Ready(Some(v))
        } else if timer.as_mut().poll(cx).is_ready() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The promise's outcome; panics (the test fails) if it is still pending after `ms`.
pub async fn settles(ms: u32, what: &str, p: Promise) -> Result<JsValue, JsValue> {
    match within(ms, JsFuture::from(p)).await {
        Some(r) => r,
        None => panic!("{what} did not settle within {ms} ms (it hangs)"),
    }
}

/// The promise's value; panics if it rejects or stays pending for `ms`.
pub async fn resolves(ms: u32, what: &str, p: Promise) -> JsValue {
    match settles(ms, what, p).await {
        Ok(v) => v,
        Err(e) => panic!("{what} rejected: {}", message(&e)),
    }
}

/// Shorthand: a call that must resolve within 10 s (the contract's bound for every call).
pub async fn ok(p: Promise) -> JsValue {
    resolves(10_000, "an outbox call", p).await
}

/// Calls `obj.method(args...)` on a JS object (the harness's stub, token switch, lock holder).
pub fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: js_sys::Function = get(obj, method).dyn_into().unwrap_or_else(|_| panic!("no method {method}"));
    f.apply(obj, &args.iter().collect::<js_sys::Array>()).unwrap_or_else(|e| panic!("{method} threw: {}", message(&e)))
}

/// The config for a test outbox: `extra` (a JSON object) merged over `{endpoint, log: "off", dbName}`.
pub fn config(db: &str, extra: &str) -> JsValue {
    let c = json(r#"{"endpoint": "/api/v1/progress", "log": "off"}"#);
    set(&c, "dbName", &JsValue::from_str(db));
    Object::assign(c.unchecked_ref::<Object>(), json(extra).unchecked_ref::<Object>());
    c
}

/// `Outbox.open`, bounded.
pub async fn open_with(config: JsValue) -> Outbox {
    match within(15_000, Outbox::open(config)).await {
        Some(Ok(o)) => o,
        Some(Err(e)) => panic!("Outbox.open failed: {}", message(&e)),
        None => panic!("Outbox.open did not settle within 15 s"),
    }
}

pub async fn open(db: &str, extra: &str) -> Outbox {
    open_with(config(db, extra)).await
}

/// Closes `outboxes`, puts the clock and the network back, and deletes the database.
pub async fn finish(db: &str, outboxes: &[&Outbox]) {
    for o in outboxes {
        o.close();
    }
    set_clock_offset(0.0);
    restore_online();
    let _ = within(5_000, JsFuture::from(delete_db(db))).await;
}

pub async fn save(outbox: &Outbox, kg: f64) -> JsValue {
    resolves(10_000, "saveWeight", outbox.save_weight(JsValue::from_f64(kg), JsValue::UNDEFINED)).await
}

/// `saveWeight(kg)` for user `u1`, whoever is started (or no one).
pub async fn save_for(outbox: &Outbox, kg: f64) -> JsValue {
    resolves(10_000, "saveWeight", outbox.save_weight(JsValue::from_f64(kg), json(r#"{"userId": "u1"}"#))).await
}

/// Makes a stored event record `processing` under claim `claims` of context `owner`, as that
/// context's claim writes it (state key 1, no place in the claimable queue).
pub fn as_claimed(record: &JsValue, claims: f64, owner: &str) {
    set(record, "status", &JsValue::from_str("processing"));
    set(record, "sk", &JsValue::from_f64(1.0));
    let _ = js_sys::Reflect::delete_property(record.unchecked_ref::<Object>(), &JsValue::from_str("rdy"));
    set(record, "claims", &JsValue::from_f64(claims));
    set(record, "claimedBy", &JsValue::from_str(owner));
}

/// The console lines recorded so far by [`capture_console`], each `"<level> <text>"`.
pub fn console_lines(console: &JsValue) -> Vec<String> {
    let f: js_sys::Function = get(console, "lines").unchecked_into();
    array(&f.call0(console).unwrap()).iter().filter_map(|l| l.as_string()).collect()
}

/// Ends a [`capture_console`].
pub fn restore_console(console: &JsValue) {
    get(console, "restore").unchecked_into::<js_sys::Function>().call0(console).unwrap();
}

/// Every stats object a `subscribe()` callback is called with, in order, until [`Heard::off`].
pub struct Heard {
    pub all: js_sys::Array,
    unsubscribe: js_sys::Function,
    _callback: Closure<dyn FnMut(JsValue)>,
}

impl Heard {
    pub fn off(self) {
        let _ = self.unsubscribe.call0(&JsValue::UNDEFINED);
    }
}

pub fn subscribe_all(outbox: &Outbox) -> Heard {
    let all = js_sys::Array::new();
    let callback = {
        let all = all.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            all.push(&s);
        })
    };
    let unsubscribe = outbox.subscribe(callback.as_ref().clone()).unwrap();
    Heard { all, unsubscribe, _callback: callback }
}

pub async fn stats(outbox: &Outbox, user: &str) -> JsValue {
    resolves(10_000, "stats", outbox.stats(JsValue::from_str(user))).await
}

pub async fn events(outbox: &Outbox, query: &str) -> Vec<JsValue> {
    array(&resolves(10_000, "events", outbox.events(json(query))).await)
}

/// The one event of entry `entry_id`.
pub async fn event_of(outbox: &Outbox, user: &str, entry_id: &str) -> JsValue {
    let all = events(outbox, &format!(r#"{{"userId": "{user}"}}"#)).await;
    all.into_iter().find(|e| opt_string(e, "entityId").as_deref() == Some(entry_id)).unwrap_or_else(|| panic!("no event for entry {entry_id}"))
}

/// `processNow()`; it must settle within `ms`.
pub async fn process_now(outbox: &Outbox, ms: u32) -> JsValue {
    resolves(ms, "processNow()", outbox.process_now()).await
}

/// Requests the stub saw.
pub fn requests(stub: &JsValue) -> Vec<JsValue> {
    array(&get(stub, "requests"))
}

/// Requests the stub saw with Idempotency-Key `key` (redirect targets excluded).
pub fn sent(stub: &JsValue, key: &str) -> u32 {
    call(stub, "byKey", &[JsValue::from_str(key)]).as_f64().unwrap_or(0.0) as u32
}

/// Requests the stub saw whose path contains `part`.
pub fn sent_to(stub: &JsValue, part: &str) -> u32 {
    call(stub, "to", &[JsValue::from_str(part)]).as_f64().unwrap_or(0.0) as u32
}

/// The Idempotency-Keys of the requests sent with `Authorization: auth`, in order.
pub fn keys_sent_with(stub: &JsValue, auth: &str) -> Vec<String> {
    array(&call(stub, "authOf", &[JsValue::from_str(auth)])).iter().filter_map(|k| k.as_string()).collect()
}

/// The Idempotency-Keys the stub saw, in order.
pub fn keys(stub: &JsValue) -> Vec<String> {
    array(&call(stub, "keys", &[])).iter().filter_map(|k| k.as_string()).collect()
}

/// The upload lock name of `user` in database `db` (CONTRACT §3b: one uploader per user).
pub fn lock_name(db: &str, user: &str) -> String {
    format!("progress-outbox:{db}:{user}")
}

/// How many times `name` is held right now (Web Locks), and how many requests for it wait.
pub async fn lock_state(name: &str) -> (usize, usize) {
    let s = ok(held_locks()).await;
    let count = |k: &str| array(&get(&s, k)).iter().filter(|n| n.as_string().as_deref() == Some(name)).count();
    (count("held"), count("pending"))
}

pub const YEAR_MS: f64 = 365.0 * 24.0 * 3_600_000.0;
pub const DAY_MS: f64 = 24.0 * 3_600_000.0;
pub const HOUR_MS: f64 = 3_600_000.0;

/// True once u1 has exactly `n` events, all completed.
pub async fn all_completed(outbox: &Outbox, n: usize) -> bool {
    let all = events(outbox, r#"{"userId": "u1"}"#).await;
    all.len() == n && all.iter().all(|e| opt_string(e, "status").as_deref() == Some("completed"))
}
