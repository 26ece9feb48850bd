//! The outbox without a window: the same behaviours in a dedicated worker and a service worker
//! (compiled into `tests/worker.rs` and `tests/service_worker.rs`, one context each).

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const FAST: &str = r#"{"processingIntervalMs": 50, "requestTimeoutMs": 1000, "backoffMs": [50]}"#;

#[wasm_bindgen_test]
async fn there_is_no_window_here() {
    assert!(get(&js_sys::global(), "window").is_undefined(), "these tests must run outside a page");
    assert!(!get(&js_sys::global(), "indexedDB").is_undefined());
}

#[wasm_bindgen_test]
async fn saves_and_uploads_through_the_global_fetch() {
    let db = fresh_db("w-upload");
    let stub = stub_fetch(&json(r#"[{"status": 503}]"#), &json(r#"{"status": 201, "body": {"id": "w-1"}}"#));
    let outbox = open(&db, FAST).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = ok(outbox.save_weight(JsValue::from_f64(72.5), JsValue::UNDEFINED)).await;
    eventually(5000, "the retried upload", || async { num(&stats(&outbox, "u1").await, "completed") == 1.0 }).await;
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 2, "one 503, then success");
    assert_eq!(string(&reqs[1], "path"), "/api/v1/progress", "the endpoint resolves against the worker's location");
    let body = body_json(&reqs[1]);
    assert_eq!((string(&body, "localId"), string(&body, "userId")), (string(&entry, "id"), "u1".into()));
    assert_eq!(header(&reqs[0], "idempotency-key"), header(&reqs[1], "idempotency-key"));
    let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
    assert_eq!(string(&entries[0], "backendId"), "w-1");
    let ev = &array(&ok(outbox.events(JsValue::UNDEFINED)).await)[0];
    assert_eq!((num(ev, "attemptCount"), num(ev, "requestCount")), (1.0, 2.0), "one failed answer, two requests");
    assert!(outbox.is_leader(), "Web Locks (or the lease) work here too");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn validation_and_atomicity_hold() {
    let db = fresh_db("w-validate");
    let outbox = open(&db, "{}").await;
    rejects(outbox.save_weight(JsValue::from_f64(700.0), json(r#"{"userId": "u1"}"#)), "RangeError", "OUT_OF_RANGE").await;
    rejects(outbox.save_weight(JsValue::from_str("70"), json(r#"{"userId": "u1"}"#)), "TypeError", "INVALID_TYPE").await;
    assert_eq!(array(&ok(raw_get_all(&db, "entries")).await).len(), 0);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn upgrades_an_old_database() {
    let db = fresh_db("w-upgrade");
    let entries = json(
        r#"[{"id": "old-1", "userId": "u1", "type": "weight", "quantity": 80.5, "unit": "kg", "date": 1600000000000, "backendId": null, "createdAt": 1600000000000, "updatedAt": 1600000000000}]"#,
    );
    ok(create_legacy_db(&db, 1, &entries)).await;
    let outbox = open(&db, "{}").await;
    assert_eq!(ok(raw_version(&db)).await.as_f64(), Some(4.0));
    assert_eq!(num(&stats(&outbox, "u1").await, "pending"), 1.0);
    let listed = array(&ok(outbox.entries(JsValue::from_str("u1"))).await);
    assert_eq!((listed.len(), num(&listed[0], "quantity")), (1, 80.5));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn two_instances_share_one_uploader() {
    let db = fresh_db("w-leader");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let a = open(&db, FAST).await;
    let b = open(&db, FAST).await;
    a.start(JsValue::from_str("u1")).unwrap();
    b.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a leader", || async { a.is_leader() || b.is_leader() }).await;
    sleep(100).await;
    assert!(a.is_leader() ^ b.is_leader());
    // Workers never ask each other to step down: leadership stays put (no ping-pong).
    let first = a.is_leader();
    for _ in 0..10 {
        sleep(50).await;
        assert_eq!(a.is_leader(), first, "leadership changed hands between two idle workers");
        assert!(a.is_leader() ^ b.is_leader());
    }
    for i in 0..6 {
        let o = if i % 2 == 0 { &a } else { &b };
        ok(o.save_weight(JsValue::from_f64(60.0 + i as f64), JsValue::UNDEFINED)).await;
    }
    eventually(5000, "6 completions", || async { num(&stats(&a, "u1").await, "completed") == 6.0 }).await;
    assert_eq!(requests(&stub).len(), 6);
    finish(&db, &[&a, &b]).await;
}
