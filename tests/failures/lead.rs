//! Fault 6: a context that lost the lead kept uploading (leadership was checked when a pass
//! started; a pass that streamed claims ran on after a steal, next to the new uploader). Now it
//! checks before every claim and every upload, claims nothing more and hands back what it has not
//! sent. Each outbox here has its own token, so the stub can tell who sent what.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

async fn open_as(db: &str, cfg: &str, token: &str) -> progress_outbox::Outbox {
    let c = config(db, cfg);
    set(&c, "token", &JsValue::from_str(token));
    open_with(c).await
}

/// `a` leads and is uploading the first of three events (held open by the server); `b` waits.
async fn mid_pass(db: &str, cfg: &str) -> (progress_outbox::Outbox, progress_outbox::Outbox, JsValue) {
    let stub = stub_fetch(&json(r#"[{"hold": "first"}]"#), &json(r#"{"status": 201}"#));
    let a = open_as(db, cfg, "A").await;
    let b = open_as(db, cfg, "B").await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a leads", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    for kg in [70.0, 71.0, 72.0] {
        resolves(10_000, "saveWeight", a.save_weight(JsValue::from_f64(kg), json(r#"{"userId": "u1"}"#))).await;
    }
    eventually(5_000, "the first upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("first")]).is_truthy() }).await;
    (a, b, stub)
}

#[wasm_bindgen_test]
async fn f6_a_stolen_lock_stops_the_old_uploader_mid_pass() {
    let db = fresh_db("lead-steal");
    // One pass claims all three (batchSize 3) and sends them one at a time (maxConcurrent 1).
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 5000, "batchSize": 3, "maxConcurrent": 1, "backoffMs": [100]}"#;
    let (a, b, stub) = mid_pass(&db, cfg).await;
    assert_eq!(keys_sent_with(&stub, "Bearer A").len(), 1);

    // Another context steals the upload lock (and hands it on at once: b is next in line).
    let thief = hold_lock(&lock_name(&db, "u1"), true);
    eventually(2_000, "the steal", || async { get(&thief, "granted").is_truthy() }).await;
    call(&thief, "release", &[]);
    eventually(5_000, "a notices it lost the lead", || async { !a.is_leader() }).await;
    call(&stub, "release", &[JsValue::from_str("first")]);

    eventually(10_000, "every event delivered", || async { all_completed(&b, 3).await }).await;
    let by_a = keys_sent_with(&stub, "Bearer A");
    let by_b = keys_sent_with(&stub, "Bearer B");
    assert_eq!(by_a.len(), 1, "the old uploader sent more after losing the lead: A {by_a:?}, B {by_b:?}");
    assert_eq!(by_b.len(), 2, "the new uploader sends the rest: A {by_a:?}, B {by_b:?}");
    for k in keys(&stub) {
        assert_eq!(sent(&stub, &k), 1, "{k} was sent twice: {:?}", keys(&stub));
    }
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn f6_a_newer_uploader_generation_fences_the_old_one() {
    let db = fresh_db("lead-fence");
    // One claim per event (batchSize 1): every claim checks the uploader record.
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 5000, "batchSize": 1, "maxConcurrent": 1, "backoffMs": [100]}"#;
    let (a, b, stub) = mid_pass(&db, cfg).await;

    // Another context took the uploads over: the record names it, with the next generation.
    let key = JsValue::from_str("leader:u1");
    let record = ok(raw_get(&db, "meta", "leader:u1")).await;
    let gen = get(&record, "gen").as_f64().unwrap_or(0.0);
    let taken = json(r#"{"owner": "another-context", "beat": 0, "beatAt": 0}"#);
    set(&taken, "gen", &JsValue::from_f64(gen + 1.0));
    ok(raw_put(&db, "meta", &taken, &key)).await;
    call(&stub, "release", &[JsValue::from_str("first")]);

    eventually(10_000, "every event delivered", || async { all_completed(&b, 3).await }).await;
    let by_a = keys_sent_with(&stub, "Bearer A");
    let by_b = keys_sent_with(&stub, "Bearer B");
    assert_eq!(by_a.len(), 1, "the fenced uploader claimed and sent more: A {by_a:?}, B {by_b:?}");
    for k in keys(&stub) {
        assert_eq!(sent(&stub, &k), 1, "{k} was sent twice: {:?}", keys(&stub));
    }
    finish(&db, &[&a, &b]).await;
}
