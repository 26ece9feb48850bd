//! Fault 9: storage could be evicted under pressure with nobody knowing: now `persist()` is asked
//! at open (option `persist`), and `stats()` reports `persisted` and `storage: { usage, quota }`.
//! Fault 10: the upload body lacked `userId` (the server could not check the token's subject
//! against it), and a server that echoed the token put it into stored error text.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

fn check_storage_stats(s: &JsValue) {
    let persisted = get(s, "persisted");
    assert!(persisted.as_bool().is_some() || persisted.is_null(), "persisted must be a boolean (or null where unknown): {s:?}");
    let storage = get(s, "storage");
    assert!(storage.is_object(), "storage must be {{ usage, quota }} where the browser tells: {s:?}");
    let (usage, quota) = (num(&storage, "usage"), num(&storage, "quota"));
    assert!(usage >= 0.0 && quota > 0.0, "{s:?}");
}

#[wasm_bindgen_test]
async fn f9_stats_report_persistence_and_storage_use() {
    let db = fresh_db("persist");
    let outbox = open(&db, r#"{"persist": true}"#).await;
    resolves(10_000, "saveWeight", outbox.save_weight(JsValue::from_f64(70.0), json(r#"{"userId": "u1"}"#))).await;
    check_storage_stats(&stats(&outbox, "u1").await);
    outbox.close();

    // `persist: false` is accepted (an app that asks at a better moment itself).
    let quiet = open(&db, r#"{"persist": false}"#).await;
    check_storage_stats(&stats(&quiet, "u1").await);
    finish(&db, &[&outbox, &quiet]).await;
}

#[wasm_bindgen_test]
async fn f10_the_body_names_the_user_and_stored_errors_never_hold_the_token() {
    let db = fresh_db("wire");
    const SECRET: &str = "tok-5ecret-abc123";
    // The server echoes the token it was given in its error bodies: a 503 (retried) then a 422
    // (gave up), and one that answers with it as a batch-style "error" field.
    let stub = stub_fetch(
        &json(&format!(
            r#"[{{"status": 503, "body": "upstream said: invalid bearer {SECRET}"}},
                {{"status": 422, "body": {{"error": "token {SECRET} is not allowed to write this"}}}}]"#
        )),
        &json(r#"{"status": 201}"#),
    );
    let c = config(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 2000, "backoffMs": [50], "maxAttempts": 5}"#);
    set(&c, "token", &JsValue::from_str(SECRET));
    let outbox = open_with(c).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 72.5).await;
    let id = string(&entry, "id");
    process_now(&outbox, 10_000).await;
    eventually(5_000, "the first answer (503) is recorded", || async { !get(&event_of(&outbox, "u1", &id).await, "errorMessage").is_null() }).await;

    // The body carries userId (CONTRACT §2).
    let first = &requests(&stub)[0];
    let body = get(first, "body");
    assert_eq!(opt_string(&body, "userId").as_deref(), Some("u1"), "the upload body lacks userId: {body:?}");
    assert_eq!(opt_string(&body, "localId").as_deref(), Some(id.as_str()));
    assert_eq!(opt_string(first, "auth"), Some(format!("Bearer {SECRET}")));
    let why = opt_string(&event_of(&outbox, "u1", &id).await, "errorMessage").unwrap_or_default();
    assert!(why.contains("503") || why.contains("422"), "{why:?}");
    assert!(!why.contains(SECRET), "the token is stored in errorMessage: {why:?}");

    // The retry is answered 422 (gave up, with the body excerpt).
    eventually(5_000, "the 422", || async {
        let _ = outbox.process_now();
        num(&stats(&outbox, "u1").await, "gaveUp") == 1.0
    })
    .await;

    // Neither the event's errorMessage nor stats().lastError holds the token.
    let e = event_of(&outbox, "u1", &id).await;
    let why = opt_string(&e, "errorMessage").unwrap_or_default();
    assert!(why.contains("422"), "{why:?}");
    assert!(!why.contains(SECRET), "the token is stored in errorMessage: {why:?}");
    let s = stats(&outbox, "u1").await;
    let last = opt_string(&s, "lastError").unwrap_or_default();
    assert!(!last.is_empty(), "{s:?}");
    assert!(!last.contains(SECRET), "the token is stored in lastError: {last:?}");
    // Nor does any stored record.
    for store in ["events", "meta"] {
        let all = ok(raw_get_all(&db, store)).await;
        let text = String::from(js_sys::JSON::stringify(&all).unwrap());
        assert!(!text.contains(SECRET), "the token is stored in {store}: {text}");
    }
    finish(&db, &[&outbox]).await;
}
