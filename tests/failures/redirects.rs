//! Fault 1: a redirect completed the event (fetch followed it: 301/302/303 as a GET without the
//! data, 307/308 with the health data to wherever `Location` pointed, whose `{id}` became the
//! entry's backendId). Now: never followed; a transient failure that says "redirect".

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const FAST: &str = r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 2000, "backoffMs": [60000], "maxAttempts": 5}"#;

async fn redirect_case(spec: &str, tag: &str) {
    let db = fresh_db(tag);
    let stub = stub_fetch(&json("[]"), &json(spec));
    let outbox = open(&db, FAST).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 72.5).await;
    let id = string(&entry, "id");
    process_now(&outbox, 10_000).await;

    let event = event_of(&outbox, "u1", &id).await;
    assert_ne!(string(&event, "status"), "completed", "{spec}: a redirect completed the event: {event:?}");
    assert_eq!(string(&event, "status"), "failed", "{spec}: {event:?}");
    let why = opt_string(&event, "errorMessage").unwrap_or_default();
    assert!(why.to_lowercase().contains("redirect"), "{spec}: errorMessage should say redirect: {why:?}");
    assert_eq!(num(&event, "attemptCount"), 1.0, "{spec}: a redirect is an answer: it counts");
    assert_eq!(sent_to(&stub, "/elsewhere"), 0, "{spec}: the redirect was followed to its Location");
    assert_eq!(sent(&stub, &string(&event, "id")), 1, "{spec}: one request to the endpoint");
    let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
    assert!(get(&entries[0], "backendId").is_null(), "{spec}: the entry got a backendId from elsewhere: {:?}", entries[0]);

    // The endpoint's own 2xx completes it.
    set(&stub, "fallback", &json(r#"{"status": 201, "body": {"id": "b-1"}}"#));
    ok(outbox.reset_for_retry(js_sys::Array::of1(&get(&event, "id")).into())).await;
    process_now(&outbox, 10_000).await;
    let event = event_of(&outbox, "u1", &id).await;
    assert_eq!(string(&event, "status"), "completed", "{spec}: {event:?}");
    let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
    assert_eq!(string(&entries[0], "backendId"), "b-1");
    assert_eq!(sent_to(&stub, "/elsewhere"), 0);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f1_a_redirect_never_completes_an_event() {
    // What a page sees of a redirect it did not follow (status 0, type "opaqueredirect").
    redirect_case(r#"{"redirect": 307, "location": "/elsewhere"}"#, "redir-opaque").await;
    for status in [301, 302, 303, 307, 308] {
        // The 3xx itself, where the platform shows it (a service worker answering, say).
        redirect_case(&format!(r#"{{"redirect": {status}, "location": "/elsewhere", "opaque": false}}"#), &format!("redir-{status}")).await;
    }
}

/// A 3xx the page sees (a 300, a 304: not followable redirects, handed to the page as they are)
/// had its `Retry-After` ignored: retried at the first backoff step (probe T, MED-3). CONTRACT §2:
/// a 3xx is retried after `max(backoffMs[attempt-1], Retry-After)`.
#[wasm_bindgen_test]
async fn a_3xx_the_page_sees_has_its_retry_after_honoured() {
    for status in [300, 304] {
        let db = fresh_db(&format!("redir-retry-after-{status}"));
        let spec = format!(r#"{{"status": {status}, "headers": {{"Retry-After": "30"}}}}"#);
        let stub = stub_fetch(&json("[]"), &json(&spec));
        let outbox = open(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 2000, "backoffMs": [100], "maxAttempts": 5}"#).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        let id = string(&save(&outbox, 72.5).await, "id");
        process_now(&outbox, 10_000).await;
        let event = event_of(&outbox, "u1", &id).await;
        assert_eq!(string(&event, "status"), "failed", "{status}: {event:?}");
        assert_eq!(num(&event, "attemptCount"), 1.0, "{status}: {event:?}");
        let wait = num(&event, "nextAttemptAt") - num(&event, "lastAttemptAt");
        assert!(wait >= 29_000.0, "{status}: retried {wait} ms later, not after its Retry-After (30 s): {event:?}");
        assert_eq!(sent(&stub, &string(&event, "id")), 1);
        finish(&db, &[&outbox]).await;
    }
}
