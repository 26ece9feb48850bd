//! Helpers of the feature suite: the outbox driven through its JS API (methods looked up and
//! called by name on the exported object, as an app calls them), the fake API of harness.js,
//! and small assertions.
#![allow(dead_code)]

use js_sys::{Array, Function, Object, Promise};
use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[path = "../common/js.rs"]
mod js;
pub use js::*;

#[wasm_bindgen(module = "/tests/features/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = fakeServer)]
    pub fn fake_server(script: &str, item_script: &str) -> JsValue;
    #[wasm_bindgen(js_name = setOnline)]
    pub fn set_online(value: bool);
    #[wasm_bindgen(js_name = setConnection)]
    pub fn set_connection(value: &JsValue);
    #[wasm_bindgen(js_name = restorePlatform)]
    pub fn restore_platform();
    #[wasm_bindgen(js_name = createV3Db)]
    pub fn create_v3_db(name: &str, fixture: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = createOddDb)]
    pub fn create_odd_db(name: &str, odd: &str) -> Promise;
    #[wasm_bindgen(js_name = rawGetAll)]
    pub fn raw_get_all(name: &str, store: &str) -> Promise;
    #[wasm_bindgen(js_name = rawSchema)]
    pub fn raw_schema(name: &str) -> Promise;
    #[wasm_bindgen(js_name = deleteDb)]
    pub fn delete_db(name: &str) -> Promise;
    #[wasm_bindgen(js_name = cloneRetrying)]
    pub fn clone_retrying(name: &str, user: &str, count: u32, due_at: f64) -> Promise;
    #[wasm_bindgen(js_name = countPuts)]
    pub fn count_puts(store: &str) -> JsValue;
    #[wasm_bindgen(js_name = isInstance)]
    pub fn is_instance(value: &JsValue, ctor: &str) -> bool;
    #[wasm_bindgen(js_name = jsonValue)]
    pub fn json(text: &str) -> JsValue;
    fn invoke(obj: &JsValue, method: &str, args: &Array) -> Promise;
    #[wasm_bindgen(js_name = invokeSync)]
    fn invoke_sync(obj: &JsValue, method: &str, args: &Array) -> JsValue;
    pub fn recorder() -> JsValue;
}

/// A database name no other test uses.
pub fn fresh_db(tag: &str) -> String {
    format!("features-{tag}-{}", uuid::Uuid::new_v4())
}

/// `Object.assign(target, source)`.
pub fn assign(target: &JsValue, source: &JsValue) {
    Object::assign(target.unchecked_ref::<Object>(), source.unchecked_ref::<Object>());
}

/// `Object.keys(v)`.
pub fn keys(v: &JsValue) -> Vec<String> {
    Object::keys(v.unchecked_ref::<Object>()).to_vec().iter().filter_map(|k| k.as_string()).collect()
}

pub fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub fn n(v: f64) -> JsValue {
    JsValue::from_f64(v)
}

/// Asserts `r` is a rejection with a JS error of class `class` (also an `Error`) and code `code`;
/// returns its message.
pub fn expect_error(r: Result<JsValue, JsValue>, class: &str, code: &str, what: &str) -> String {
    match r {
        Ok(v) => panic!("{what}: expected a {class} ({code}), got {}", show(&v)),
        Err(e) => {
            assert!(is_instance(&e, class), "{what}: expected a {class}, got {e:?}");
            assert!(is_instance(&e, "Error"), "{what}: not an Error: {e:?}");
            assert_eq!(get(&e, "code").as_string().as_deref(), Some(code), "{what}: code of: {}", message(&e));
            message(&e)
        }
    }
}

/// An outbox held as the JS object an app gets from `Outbox.open`; every call goes through the
/// exported JS method of that name.
pub struct Ob {
    pub js: JsValue,
    pub db: String,
}

/// Fast settings for tests (overridable per test).
pub const FAST: &str = r#"{"processingIntervalMs": 50, "backoffMs": [60000], "requestTimeoutMs": 2000, "log": "off", "persist": false}"#;

impl Ob {
    /// Opens an outbox on `db` with [`FAST`] and `extra` (a JSON object) over it.
    pub async fn open(db: &str, extra: &str) -> Ob {
        Ob::open_with_token(db, extra, &JsValue::UNDEFINED).await
    }

    /// [`Ob::open`] with a `token` option (a JS value: a function, say).
    pub async fn open_with_token(db: &str, extra: &str, token: &JsValue) -> Ob {
        let c = json(r#"{"endpoint": "/api/v1/progress"}"#);
        assign(&c, &json(FAST));
        set(&c, "dbName", &s(db));
        assign(&c, &json(extra));
        if !token.is_undefined() {
            set(&c, "token", token);
        }
        match Outbox::open(c).await {
            Ok(o) => Ob { js: JsValue::from(o), db: db.to_owned() },
            Err(e) => panic!("Outbox.open failed: {}", message(&e)),
        }
    }

    /// `outbox[method](...args)`, awaited.
    pub async fn call(&self, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let list: Array = args.iter().collect();
        JsFuture::from(invoke(&self.js, method, &list)).await
    }

    /// Like [`Ob::call`], panicking on a rejection.
    pub async fn ok(&self, method: &str, args: &[JsValue]) -> JsValue {
        match self.call(method, args).await {
            Ok(v) => v,
            Err(e) => panic!("{method} rejected: {}", message(&e)),
        }
    }

    /// A sync method: its return value, or what it threw.
    pub fn call_sync(&self, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let list: Array = args.iter().collect();
        let r = invoke_sync(&self.js, method, &list);
        if get(&r, "ok").as_bool() == Some(true) {
            Ok(get(&r, "value"))
        } else {
            Err(get(&r, "error"))
        }
    }

    pub fn start(&self, user: &str) {
        self.call_sync("start", &[s(user)]).unwrap_or_else(|e| panic!("start threw: {}", message(&e)));
    }

    pub fn stop(&self) {
        self.call_sync("stop", &[]).unwrap();
    }

    /// `save(metric, quantity, options)`.
    pub async fn save(&self, metric: &str, quantity: f64, options: &str) -> JsValue {
        self.ok("save", &[s(metric), n(quantity), json(options)]).await
    }

    pub async fn update(&self, id: &str, changes: &str) -> JsValue {
        self.ok("update", &[s(id), json(changes)]).await
    }

    pub async fn delete(&self, id: &str) {
        self.ok("delete", &[s(id)]).await;
    }

    pub async fn stats(&self, user: &str) -> JsValue {
        self.ok("stats", &[s(user)]).await
    }

    pub async fn events(&self, user: &str) -> Vec<JsValue> {
        let q = json("{}");
        set(&q, "userId", &s(user));
        array(&self.ok("events", &[q]).await)
    }

    /// The events of entry `entry_id`, oldest first.
    pub async fn events_of(&self, user: &str, entry_id: &str) -> Vec<JsValue> {
        let mut evs: Vec<JsValue> = self.events(user).await.into_iter().filter(|e| string(e, "entityId") == entry_id).collect();
        evs.sort_by(|a, b| num(a, "createdAt").partial_cmp(&num(b, "createdAt")).unwrap());
        evs
    }

    pub async fn event(&self, user: &str, id: &str) -> JsValue {
        self.events(user).await.into_iter().find(|e| string(e, "id") == id).unwrap_or_else(|| panic!("no event {id}"))
    }

    pub async fn entries(&self, query: JsValue) -> Vec<JsValue> {
        array(&self.ok("entries", &[query]).await)
    }

    pub async fn entries_of(&self, user: &str) -> Vec<JsValue> {
        self.entries(s(user)).await
    }

    pub async fn process_now(&self) -> JsValue {
        self.ok("processNow", &[]).await
    }

    /// Waits until every event of `user` is completed (and `count` of them exist, if given).
    pub async fn drained(&self, user: &str, count: Option<usize>, ms: u32) {
        let what = format!("every event of {user} completed");
        eventually(ms, &what, || async {
            let evs = self.events(user).await;
            count.is_none_or(|c| evs.len() == c) && evs.iter().all(|e| string(e, "status") == "completed")
        })
        .await;
    }

    /// Waits until event `id` has `status`; returns it.
    pub async fn wait_status(&self, user: &str, id: &str, status: &str, ms: u32) -> JsValue {
        let what = format!("event {id} to be {status}");
        eventually(ms, &what, || async { string(&self.event(user, id).await, "status") == status }).await;
        self.event(user, id).await
    }

    pub fn close(&self) {
        let _ = self.call_sync("close", &[]);
    }
}

/// Closes the outboxes, puts the platform back, deletes the database.
pub async fn finish(db: &str, outboxes: &[&Ob]) {
    for o in outboxes {
        o.close();
    }
    restore_platform();
    JsFuture::from(delete_db(db)).await.unwrap();
}

/// The fake API's state, with typed accessors.
pub struct Server {
    pub st: JsValue,
}

impl Server {
    /// A fresh fake API behind `fetch`; `script`/`item_script`: see harness.js.
    pub fn new(script: &str, item_script: &str) -> Server {
        Server { st: fake_server(script, item_script) }
    }

    fn method(&self, name: &str, args: &[JsValue]) -> JsValue {
        let f: Function = get(&self.st, name).unchecked_into();
        let list: Array = args.iter().collect();
        f.apply(&self.st, &list).unwrap_or_else(|e| panic!("server.{name} threw: {}", message(&e)))
    }

    pub fn set_script(&self, src: &str) {
        self.method("setScript", &[s(src)]);
    }

    pub fn set_item_script(&self, src: &str) {
        self.method("setItemScript", &[s(src)]);
    }

    /// Lets the requests held under `name` go; returns how many there were.
    pub fn release(&self, name: &str) -> u32 {
        self.method("release", &[s(name)]).as_f64().unwrap_or(0.0) as u32
    }

    pub fn held(&self, name: &str) -> u32 {
        self.method("held", &[s(name)]).as_f64().unwrap_or(0.0) as u32
    }

    pub fn requests(&self) -> Vec<JsValue> {
        array(&get(&self.st, "requests"))
    }

    pub fn count(&self, method: &str, path_end: &str) -> usize {
        self.method("count", &[s(method), s(path_end)]).as_f64().unwrap() as usize
    }

    pub fn of(&self, method: &str) -> Vec<JsValue> {
        array(&self.method("of", &[s(method)]))
    }

    pub fn batches(&self) -> Vec<JsValue> {
        array(&self.method("batches", &[]))
    }

    pub fn batch_sizes(&self) -> Vec<u32> {
        array(&self.method("batchSizes", &[])).iter().map(|v| v.as_f64().unwrap() as u32).collect()
    }

    pub fn live(&self) -> Vec<JsValue> {
        array(&self.method("live", &[]))
    }

    pub fn all(&self) -> Vec<JsValue> {
        array(&self.method("all", &[]))
    }

    pub fn record(&self, id: &str) -> JsValue {
        self.method("record", &[s(id)])
    }

    pub fn by_local(&self, local_id: &str) -> Vec<JsValue> {
        array(&self.method("byLocal", &[s(local_id)]))
    }

    pub fn ops(&self) -> Vec<JsValue> {
        array(&get(&self.st, "ops"))
    }

    /// Where `["req" | "ans" | "abort", n]` sits in the request log (-1: absent).
    pub fn position(&self, kind: &str, n: f64) -> i32 {
        self.method("position", &[s(kind), JsValue::from_f64(n)]).as_f64().unwrap() as i32
    }

    pub fn max_in_flight(&self) -> u32 {
        num(&self.st, "maxInFlight") as u32
    }

    pub fn reset_in_flight(&self) {
        self.method("resetInFlight", &[]);
    }

    pub fn violations(&self) -> Vec<String> {
        array(&get(&self.st, "violations")).iter().filter_map(|v| v.as_string()).collect()
    }

    /// Asserts no entry ever had two requests in flight at once.
    pub fn assert_one_at_a_time(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests for one entry overlapped: {v:?}");
    }
}

pub async fn raw(db: &str, store: &str) -> Vec<JsValue> {
    array(&JsFuture::from(raw_get_all(db, store)).await.unwrap())
}

pub async fn schema(db: &str) -> JsValue {
    JsFuture::from(raw_schema(db)).await.unwrap()
}

pub async fn create_v3(db: &str, fixture: &JsValue) {
    JsFuture::from(create_v3_db(db, fixture)).await.unwrap();
}

/// `Date.now()`.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// A JS `Date`.
pub fn date(ms: f64) -> JsValue {
    js_sys::Date::new(&JsValue::from_f64(ms)).into()
}
