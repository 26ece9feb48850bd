//! Fault 2: a token function whose promise never settles stalled the outbox for good (the pass
//! held its gate and the Web Lock; processNow() never resolved; neither fixing the function nor
//! stop()/start() nor close() helped). Now: the call is bounded by requestTimeoutMs, the failure is
//! "token unavailable" (no answer: attemptCount stays 0), and everything recovers.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

// A short backoff: failed passes repeat on their own (old code gave up after maxAttempts of them).
const CFG: &str = r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 300, "backoffMs": [200], "maxAttempts": 2}"#;

fn with_token(db: &str, token: &JsValue) -> JsValue {
    let c = config(db, CFG);
    set(&c, "token", &get(token, "fn"));
    c
}

#[wasm_bindgen_test]
async fn f2_a_token_that_never_answers_is_bounded_and_recovers() {
    let db = fresh_db("token-hang");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let token = token_switch("tok-1");
    set(&token, "mode", &JsValue::from_str("hang"));
    let outbox = open_with(with_token(&db, &token)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");

    // Bounded: resolves within about one requestTimeoutMs (the bound here is generous).
    process_now(&outbox, 5_000).await;
    assert!(num(&token, "calls") >= 1.0, "the token function was asked");
    assert_eq!(requests(&stub).len(), 0, "no request without a token");
    let event = event_of(&outbox, "u1", &id).await;
    assert_eq!(string(&event, "status"), "failed", "{event:?}");
    assert_eq!(num(&event, "attemptCount"), 0.0, "no answer: it does not count toward maxAttempts: {event:?}");
    assert!(!get(&event, "gaveUp").is_truthy(), "{event:?}");
    let why = opt_string(&event, "errorMessage").unwrap_or_default();
    assert!(why.contains("token"), "errorMessage names the token: {why:?}");

    // Again and again (passes on the backoff schedule): still bounded, never counted (maxAttempts is 2).
    eventually(10_000, "several more token calls", || async { num(&token, "calls") >= 5.0 }).await;
    process_now(&outbox, 5_000).await;
    let event = event_of(&outbox, "u1", &id).await;
    assert_eq!(num(&event, "attemptCount"), 0.0, "{event:?}");
    assert_eq!(string(&event, "status"), "failed");

    // stop() and start() do not hang on the stuck call: the new session uploads once the token works.
    outbox.stop();
    set(&token, "mode", &JsValue::from_str("ok"));
    outbox.start(JsValue::from_str("u1")).unwrap();
    process_now(&outbox, 5_000).await;
    eventually(5_000, "the upload after fixing the token", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "completed" }).await;
    let event = event_of(&outbox, "u1", &id).await;
    assert_eq!(num(&event, "attemptCount"), 0.0, "{event:?}");
    assert_eq!(sent(&stub, &string(&event, "id")), 1);
    let r = &requests(&stub)[0];
    assert_eq!(opt_string(r, "auth").as_deref(), Some("Bearer tok-1"));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f2_close_during_a_hung_token_call_lets_another_outbox_upload() {
    let db = fresh_db("token-close");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let hung = token_switch("tok-a");
    set(&hung, "mode", &JsValue::from_str("hang"));
    let a = open_with(with_token(&db, &hung)).await;
    a.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&a, 70.0).await;
    eventually(5_000, "the uploader asks for a token", || async { num(&hung, "calls") >= 1.0 }).await;

    // The hung call is in a pass that holds the upload lock. close() must let go of it.
    a.close();
    let fine = token_switch("tok-b");
    let b = open_with(with_token(&db, &fine)).await;
    b.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the second outbox leads once the first closed", || async { b.is_leader() }).await;
    process_now(&b, 5_000).await;
    let id = string(&entry, "id");
    eventually(5_000, "the second outbox uploads", || async { string(&event_of(&b, "u1", &id).await, "status") == "completed" }).await;
    assert_eq!(keys_sent_with(&stub, "Bearer tok-b").len(), 1);
    assert_eq!(keys_sent_with(&stub, "Bearer tok-a").len(), 0);
    finish(&db, &[&a, &b]).await;
}

/// A probe found: a token function returning a promise whose `constructor` getter throws made
/// `Promise.resolve` throw inside the wasm: the instance trapped ("unreachable"), the event stayed
/// `processing` for good and `processNow()` rejected with TIMEOUT. And an error of 5 MB from the
/// token function was stored whole in `errorMessage` and `stats().lastError`.
#[wasm_bindgen_test]
async fn a_token_promise_that_cannot_be_awaited_or_a_huge_token_error_is_a_bounded_failure() {
    let db = fresh_db("token-odd");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let token = token_switch("tok-1");
    set(&token, "mode", &JsValue::from_str("badConstructor"));
    let outbox = open_with(with_token(&db, &token)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let errors = page_error_count();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    process_now(&outbox, 5_000).await;
    let event = event_of(&outbox, "u1", &id).await;
    assert_eq!(string(&event, "status"), "failed", "{event:?}");
    let why = string(&event, "errorMessage");
    assert!(why.contains("token function's promise rejected") && why.contains("no constructor here"), "{why}");

    // A probe found: a promise whose own `then` throws went through `Promise.resolve` as it was,
    // and the await's `then` call threw through the wasm: in Chromium the instance trapped, the
    // event stayed `processing`, and nothing uploaded again for the life of the page.
    set(&token, "mode", &JsValue::from_str("throwingThen"));
    outbox.stop();
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the throwing then recorded", || async {
        process_now(&outbox, 5_000).await;
        string(&event_of(&outbox, "u1", &id).await, "errorMessage").contains("no then here")
    })
    .await;
    assert_eq!(string(&event_of(&outbox, "u1", &id).await, "status"), "failed");

    set(&token, "mode", &JsValue::from_str("hugeError"));
    outbox.stop();
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the huge error recorded", || async {
        process_now(&outbox, 5_000).await;
        string(&event_of(&outbox, "u1", &id).await, "errorMessage").contains("threw")
    })
    .await;
    let why = string(&event_of(&outbox, "u1", &id).await, "errorMessage");
    assert!(why.len() < 1_000 && why.contains("the token function threw"), "{} characters: {}", why.len(), &why[..why.len().min(80)]);
    let last = string(&stats(&outbox, "u1").await, "lastError");
    assert!(last.len() < 1_000, "lastError holds {} characters", last.len());
    assert!(!why.contains("tok-1") && !last.contains("tok-1"), "the token is never stored");

    set(&token, "mode", &JsValue::from_str("ok"));
    outbox.stop();
    outbox.start(JsValue::from_str("u1")).unwrap();
    process_now(&outbox, 5_000).await;
    eventually(5_000, "the upload once the token works", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "completed" }).await;
    assert_eq!(requests(&stub).len(), 1);
    assert_eq!(page_errors_since(errors).length(), 0, "nothing reached the page: {:?}", page_errors_since(errors));
    finish(&db, &[&outbox]).await;
}
