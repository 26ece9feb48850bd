//! Helpers shared by the browser tests.
#![allow(dead_code)]

use js_sys::{Object, Promise};
use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[path = "../common/js.rs"]
mod js;
pub use js::*;

#[wasm_bindgen(module = "/tests/web/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = stubFetch)]
    pub fn stub_fetch(responses: &JsValue, fallback: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = jsonValue)]
    pub fn json(text: &str) -> JsValue;
    #[wasm_bindgen(js_name = createLegacyDb)]
    pub fn create_legacy_db(name: &str, version: u32, entries: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = createDbAtVersion)]
    pub fn create_db_at_version(name: &str, version: u32) -> Promise;
    #[wasm_bindgen(js_name = rawGetAll)]
    pub fn raw_get_all(name: &str, store: &str) -> Promise;
    #[wasm_bindgen(js_name = rawGet)]
    pub fn raw_get(name: &str, store: &str, key: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = rawPut)]
    pub fn raw_put(name: &str, store: &str, value: &JsValue, key: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = rawDelete)]
    pub fn raw_delete(name: &str, store: &str, key: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = rawVersion)]
    pub fn raw_version(name: &str) -> Promise;
    #[wasm_bindgen(js_name = upgradeElsewhere)]
    pub fn upgrade_elsewhere(name: &str, version: u32) -> Promise;
    #[wasm_bindgen(js_name = deleteDb)]
    pub fn delete_db(name: &str) -> Promise;
    #[wasm_bindgen(js_name = heldLocks)]
    pub fn held_locks(prefix: &str) -> Promise;
    #[wasm_bindgen(js_name = isInstance)]
    pub fn is_instance(value: &JsValue, ctor: &str) -> bool;
    #[wasm_bindgen(js_name = captureConsole)]
    pub fn capture_console() -> JsValue;
    #[wasm_bindgen(js_name = setOnline)]
    pub fn set_online(value: bool);
}

/// A database name no other test uses.
pub fn fresh_db(tag: &str) -> String {
    format!("test-{tag}-{}", uuid::Uuid::new_v4())
}

pub async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

pub async fn ok(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => panic!("promise rejected: {}", message(&e)),
    }
}

/// `extra` (a JSON object) merged over `base`, as JSON text.
pub fn merged(base: &str, extra: &str) -> String {
    let b = json(base);
    Object::assign(b.unchecked_ref::<Object>(), json(extra).unchecked_ref::<Object>());
    String::from(js_sys::JSON::stringify(&b).unwrap())
}

/// The requests a `stubFetch` stub has seen, in order.
pub fn requests(stub: &JsValue) -> Vec<JsValue> {
    array(&get(stub, "requests"))
}

/// A header of a request a `stubFetch` stub recorded (names are lower-case).
pub fn header(req: &JsValue, name: &str) -> Option<String> {
    get(&get(req, "headers"), name).as_string()
}

/// The JSON body of a request a `stubFetch` stub recorded.
pub fn body_json(req: &JsValue) -> JsValue {
    json(&string(req, "body"))
}

/// The config for a test outbox: `extra` is a JSON object merged over the defaults below.
pub fn config(db: &str, extra: &str) -> JsValue {
    let c = json(r#"{"endpoint": "/api/v1/progress", "log": "off"}"#);
    set(&c, "dbName", &JsValue::from_str(db));
    let extra = json(extra);
    Object::assign(c.unchecked_ref::<Object>(), extra.unchecked_ref::<Object>());
    c
}

/// Closes `outboxes` and deletes their database (the end of every test).
pub async fn finish(db: &str, outboxes: &[&Outbox]) {
    for o in outboxes {
        o.close();
    }
    wait_closed(db).await;
    ok(delete_db(db)).await;
}

/// Waits (at most 3 s) until no outbox of database `db` holds a Web Lock: `close()` returns at
/// once and finishes in the background (uploads in flight are recorded, the uploads handed
/// over, then its liveness lock released), so a test waits here before the next one starts.
pub async fn wait_closed(db: &str) {
    let prefix = format!("progress-outbox:{db}:");
    for _ in 0..300 {
        if array(&ok(held_locks(&prefix)).await).is_empty() {
            return;
        }
        sleep(10).await;
    }
}

pub async fn open(db: &str, extra: &str) -> Outbox {
    match Outbox::open(config(db, extra)).await {
        Ok(o) => o,
        Err(e) => panic!("Outbox.open failed: {}", message(&e)),
    }
}

/// Asserts `p` rejects with a JS error of class `class` and code `code`; returns its message.
pub async fn rejects(p: Promise, class: &str, code: &str) -> String {
    match JsFuture::from(p).await {
        Ok(v) => panic!("expected a {class} ({code}), resolved with {v:?}"),
        Err(e) => {
            assert!(is_instance(&e, class), "expected a {class}, got {e:?}");
            assert!(is_instance(&e, "Error"), "not an Error: {e:?}");
            assert_eq!(get(&e, "code").as_string().as_deref(), Some(code), "code of: {}", message(&e));
            message(&e)
        }
    }
}

/// Asserts a thrown JS error (from a sync method).
pub fn throws(r: Result<impl std::fmt::Debug, JsValue>, class: &str, code: &str) -> String {
    match r {
        Ok(v) => panic!("expected a {class} ({code}), got {v:?}"),
        Err(e) => {
            assert!(is_instance(&e, class), "expected a {class}, got {e:?}");
            assert_eq!(get(&e, "code").as_string().as_deref(), Some(code), "code of: {}", message(&e));
            message(&e)
        }
    }
}

pub async fn stats(outbox: &Outbox, user: &str) -> JsValue {
    ok(outbox.stats(JsValue::from_str(user))).await
}

pub async fn events(outbox: &Outbox, query: &str) -> Vec<JsValue> {
    array(&ok(outbox.events(json(query))).await)
}

#[wasm_bindgen(module = "/tests/web/harness.js")]
extern "C" {
    /// Values made in a same-origin iframe's realm (see harness.js).
    #[wasm_bindgen(js_name = foreignRealm)]
    pub fn foreign_realm() -> JsValue;
}
