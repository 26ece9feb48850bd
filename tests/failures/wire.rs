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

/// A review found: an answer's whole body was copied into the wasm's memory (and copied again to
/// blank the token), and so was a token function's string: hundreds of megabytes from a runaway
/// server or a broken token cache would exhaust it and kill the instance for good. Now a body over
/// 16 M characters, or a token over 1 M, is refused by its length (a body's start is kept for the
/// message). (This cannot show the trap itself: a page cannot hold strings that large reliably.)
#[wasm_bindgen_test]
async fn a_huge_answer_or_token_is_refused_by_its_length_never_copied_whole() {
    let db = fresh_db("huge");
    // 17 M characters, just over the limit: an id at its start, then padding (a runaway server's echo).
    let _stub = stub_fetch(&json(r#"[{"status": 201, "bodyPrefix": "{\"id\": \"b-1\", \"pad\": \"", "bodyPad": 17000000}]"#), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 20000, "backoffMs": [60000], "maxAttempts": 5}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let id = string(&save(&outbox, 70.0).await, "id");
    process_now(&outbox, 10_000).await;
    let e = event_of(&outbox, "u1", &id).await;
    let why = opt_string(&e, "errorMessage").unwrap_or_default();
    assert_eq!(opt_string(&e, "status").as_deref(), Some("failed"), "{e:?}");
    assert!(why.contains("not read") && why.chars().count() < 2_000, "{why}");
    // The next answer is an ordinary one: it completes.
    let ids = js_sys::Array::of1(&get(&e, "id"));
    resolves(10_000, "resetForRetry", outbox.reset_for_retry(ids.into())).await;
    eventually(5_000, "the retry completes", || async {
        let _ = outbox.process_now();
        all_completed(&outbox, 1).await
    })
    .await;

    // A token function whose string is 2 M characters: a failed attempt, said clearly.
    let c = config(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 2000, "backoffMs": [50], "maxAttempts": 5, "log": "off"}"#);
    set(&c, "token", &js_sys::Function::new_no_args("return 't'.repeat(20000000)"));
    outbox.close();
    let other = open_with(c).await;
    other.start(JsValue::from_str("u1")).unwrap();
    let id = string(&save(&other, 71.0).await, "id");
    process_now(&other, 10_000).await;
    let why = opt_string(&event_of(&other, "u1", &id).await, "errorMessage").unwrap_or_default();
    assert!(why.contains("far longer than any token"), "{why}");
    // The instance still works.
    assert!(num(&stats(&other, "u1").await, "pending") + num(&stats(&other, "u1").await, "failed") >= 1.0);
    finish(&db, &[&outbox, &other]).await;
}

/// An update answered 2xx with JSON that is not an object (`true`, `[]`, `"ok"`, `null`, `1`) was
/// taken for "a body that is not JSON": retried, counted, given up, and a later delete of the
/// entry never sent (probe T, MED-1). Any JSON (or no body) stores an update.
#[wasm_bindgen_test]
async fn an_update_answered_2xx_with_any_json_is_stored() {
    for body in ["true", "[]", r#""ok""#, "null", "1"] {
        let db = fresh_db("put-any-json");
        let answer = format!(r#"{{"status": 200, "body": {body:?}}}"#);
        let stub = stub_fetch(&json(r#"[{"status": 201, "body": {"id": "b-1"}}]"#), &json(&answer));
        let outbox = open(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 2000, "backoffMs": [100], "maxAttempts": 5}"#).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        let id = string(&save(&outbox, 70.0).await, "id");
        process_now(&outbox, 10_000).await;
        resolves(5_000, "update", outbox.update(JsValue::from_str(&id), json(r#"{"quantity": 71}"#))).await;
        process_now(&outbox, 10_000).await;
        let all = events(&outbox, r#"{"userId": "u1"}"#).await;
        assert!(all.iter().all(|e| opt_string(e, "status").as_deref() == Some("completed")), "{body}: {all:?}");
        assert_eq!(requests(&stub).len(), 2, "{body}: one POST, one PUT");
        finish(&db, &[&outbox]).await;
    }
}
