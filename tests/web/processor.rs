//! The processor against a scripted `fetch`: the wire format, every row of the response table,
//! backoff and Retry-After, token refresh, concurrency, order, user isolation, stop, stale
//! recovery, cleanup, wake-ups, subscriptions and logging.

use js_sys::{Date, Function};
use progress_outbox::domain::config::LogLevel;
use progress_outbox::domain::retry::RetryPolicy;
use progress_outbox::platform::Log;
use progress_outbox::store::Store;
use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

/// Fast settings for tests: small intervals and backoff (overridable per test).
const FAST: &str = r#"{"processingIntervalMs": 50, "backoffMs": [60000], "requestTimeoutMs": 2000}"#;

async fn open_with(db: &str, extra: &str, token: Option<&Function>) -> Outbox {
    let c = config(db, &merged(FAST, extra));
    if let Some(t) = token {
        set(&c, "token", t);
    }
    match Outbox::open(c).await {
        Ok(o) => o,
        Err(e) => panic!("Outbox.open failed: {}", message(&e)),
    }
}

fn token_fn(body: &str) -> Function {
    Function::new_with_args("userId", body)
}

async fn save(outbox: &Outbox, kg: f64, opts: &str) -> JsValue {
    ok(outbox.save_weight(JsValue::from_f64(kg), json(opts))).await
}

async fn only_event(outbox: &Outbox, user: &str) -> JsValue {
    let q = json("{}");
    set(&q, "userId", &JsValue::from_str(user));
    let evs = array(&ok(outbox.events(q)).await);
    assert_eq!(evs.len(), 1, "expected exactly one event for {user}");
    evs.into_iter().next().unwrap()
}

async fn wait_status(outbox: &Outbox, user: &str, status: &str, ms: u32) -> JsValue {
    let last = std::rc::Rc::new(std::cell::RefCell::new(JsValue::UNDEFINED));
    let what = format!("the event of {user} to be {status}");
    eventually(ms, &what, || {
        let fut = only_event(outbox, user);
        let last = last.clone();
        async move {
            let e = fut.await;
            let done = string(&e, "status") == status;
            *last.borrow_mut() = e;
            done
        }
    })
    .await;
    let e = last.borrow().clone();
    e
}

#[wasm_bindgen_test]
async fn success_sends_the_contract_request_and_stores_the_backend_id() {
    let db = fresh_db("p-success");
    let stub = stub_fetch(&json(r#"[{"status": 201, "body": {"id": "b-1"}}]"#), &JsValue::NULL);
    let outbox = open_with(&db, "{}", Some(&token_fn("return 'tok-' + userId"))).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let d = Date::new(&JsValue::from_str("2026-11-26T07:30:00.000Z"));
    let opts = json("{}");
    set(&opts, "date", &d);
    let entry = ok(outbox.save_weight(JsValue::from_f64(72.5), opts)).await;
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;

    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(string(r, "path"), "/api/v1/progress");
    assert_eq!(string(r, "method"), "POST");
    assert_eq!(string(r, "redirect"), "manual", "redirects are never followed");
    assert_eq!(header(r, "authorization").as_deref(), Some("Bearer tok-u1"));
    assert_eq!(header(r, "idempotency-key"), Some(string(&ev, "id")));
    assert_eq!(header(r, "content-type").as_deref(), Some("application/json"));
    let expected =
        format!(r#"{{"localId":"{}","userId":"u1","type":"weight","quantity":72.5,"unit":"kg","date":"2026-11-26T07:30:00.000Z"}}"#, string(&entry, "id"));
    assert_eq!(string(r, "body"), expected);

    // attemptCount counts failed answers only; requestCount every request.
    assert_eq!((num(&ev, "attemptCount"), num(&ev, "requestCount")), (0.0, 1.0));
    assert_eq!(string(&ev, "operation"), "create");
    assert!(num(&ev, "completedAt") >= num(&ev, "lastAttemptAt"));
    assert!(get(&ev, "errorMessage").is_null());
    let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
    assert_eq!(string(&entries[0], "backendId"), "b-1");
    assert!(num(&entries[0], "updatedAt") >= num(&entries[0], "createdAt"));
    let st = stats(&outbox, "u1").await;
    assert_eq!((num(&st, "completed"), num(&st, "pending")), (1.0, 0.0));
    assert!(num(&st, "lastSyncAt") > 0.0 && num(&st, "syncLatencyMs") >= 0.0);
    assert_eq!((string(&st, "health"), num(&st, "failedInARow")), ("ok".into(), 0.0));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn values_from_another_realm_are_accepted_like_local_ones() {
    // An app's iframe, or a test driver's script, hands over objects, Dates and functions
    // that are not `instanceof` this realm's constructors; they must work all the same.
    let db = fresh_db("p-realm");
    let realm = foreign_realm();
    let call = |name: &str, args: &[JsValue]| {
        let f: Function = get(&realm, name).unchecked_into();
        f.apply(&JsValue::NULL, &args.iter().collect::<js_sys::Array>()).unwrap()
    };
    let text = |s: &str| JsValue::from_str(s);
    let stub = stub_fetch(&json(r#"[{"status": 201, "body": {"id": "b-realm"}}]"#), &JsValue::NULL);
    let config = call("json", &[text(&merged(FAST, r#"{"endpoint": "/api/v1/progress", "log": "off"}"#))]);
    set(&config, "dbName", &text(&db));
    set(&config, "token", &call("fn", &[text("userId"), text("return 'tok-' + userId")]));
    assert!(call("isForeign", std::slice::from_ref(&config)).is_truthy(), "the options object is from the iframe's realm");
    let outbox = match Outbox::open(config).await {
        Ok(o) => o,
        Err(e) => panic!("Outbox.open refused foreign options: {}", message(&e)),
    };
    let seen = call("fn", &[text("s"), text("this.calls = (this.calls || 0) + 1;")]);
    let unsubscribe = outbox.subscribe(seen).unwrap();
    outbox.start(JsValue::from_str("u1")).unwrap();
    let opts = call("json", &[text(r#"{"priority": 3}"#)]);
    set(&opts, "date", &call("date", &[JsValue::from_f64(1_764_142_200_000.0)]));
    let entry = match JsFuture::from(outbox.save_weight(JsValue::from_f64(72.5), opts)).await {
        Ok(v) => v,
        Err(e) => panic!("saveWeight refused a foreign Date: {}", message(&e)),
    };
    assert_eq!(num(&entry, "date"), 1_764_142_200_000.0);
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;
    assert_eq!(num(&ev, "priority"), 3.0);
    assert_eq!(header(&requests(&stub)[0], "authorization").as_deref(), Some("Bearer tok-u1"));
    // A foreign array of ids, and a foreign Error thrown by a token function.
    let ids = call("array", &[JsValue::from_str(&string(&ev, "id"))]);
    assert_eq!(ok(outbox.reset_for_retry(ids)).await.as_f64(), Some(0.0), "a completed event is not reset");
    unsubscribe.call0(&JsValue::NULL).unwrap();
    finish(&db, &[&outbox]).await;

    let db = fresh_db("p-realm-err");
    stub_fetch(&json("[]"), &JsValue::NULL);
    let config = call("json", &[text(&merged(FAST, r#"{"endpoint": "/api/v1/progress", "log": "off"}"#))]);
    set(&config, "dbName", &text(&db));
    set(&config, "token", &call("fn", &[text("throw new Error('session store unavailable')")]));
    let outbox = Outbox::open(config).await.unwrap_or_else(|e| panic!("{}", message(&e)));
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "failed", 3000).await;
    let why = string(&ev, "errorMessage");
    assert!(why.contains("Error: session store unavailable"), "{why}");
    assert_eq!(get(&ev, "gaveUp").as_bool(), Some(false), "no token is no answer: never gives up");
    finish(&db, &[&outbox]).await;
    call("remove", &[]);
}

#[wasm_bindgen_test]
async fn numeric_backend_ids_become_strings_and_no_token_means_no_authorization() {
    let db = fresh_db("p-numeric");
    let stub = stub_fetch(&json(r#"[{"status": 200, "body": {"id": 42}}]"#), &JsValue::NULL);
    let outbox = open_with(&db, "{}", None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    wait_status(&outbox, "u1", "completed", 3000).await;
    let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
    assert_eq!(string(&entries[0], "backendId"), "42");
    assert_eq!(header(&requests(&stub)[0], "authorization"), None);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn transient_statuses_redirects_network_errors_and_timeouts_are_retried_with_backoff() {
    for spec in [
        r#"{"status": 302, "headers": {"Location": "/elsewhere"}}"#,
        r#"{"status": 307, "headers": {"Location": "/elsewhere"}}"#,
        r#"{"status": 408}"#,
        r#"{"status": 409}"#,
        r#"{"status": 425}"#,
        r#"{"status": 429}"#,
        r#"{"status": 500, "body": "boom"}"#,
        r#"{"status": 503}"#,
        r#"{"networkError": true}"#,
        r#"{"hang": true}"#,
        r#"{"status": 200, "body": "<html>captive portal</html>"}"#,
    ] {
        let db = fresh_db("p-transient");
        let stub = stub_fetch(&json(&format!("[{spec}]")), &json(r#"{"hang": true}"#));
        // A short timeout only where the request hangs: elsewhere a stalled page must not turn
        // the stub's answer into a timeout.
        let timeout = if spec.contains("hang") { 100 } else { 3000 };
        let outbox = open_with(&db, &format!(r#"{{"requestTimeoutMs": {timeout}, "backoffMs": [60000]}}"#), None).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        save(&outbox, 70.0, "{}").await;
        let ev = wait_status(&outbox, "u1", "failed", 3000).await;
        assert_eq!(get(&ev, "gaveUp").as_bool(), Some(false), "{spec} must be retried");
        let wait = num(&ev, "nextAttemptAt") - num(&ev, "lastAttemptAt");
        assert!((60_000.0..61_000.0).contains(&wait), "{spec}: backoff[0] = 60 s, got {wait}");
        let msg = string(&ev, "errorMessage");
        let expect = match spec {
            s if s.contains("networkError") => "network error".to_string(),
            s if s.contains("hang") => "no response within 100 ms".to_string(),
            s if s.contains("portal") => "without an \"id\"".to_string(),
            s if s.contains("Location") => format!("redirect (HTTP {})", &s[11..14]),
            s => format!("HTTP {}", &s[11..14]),
        };
        assert!(msg.contains(&expect), "{spec}: {msg}");
        // A failed answer (any status, a redirect included) counts toward maxAttempts; no answer never does.
        let answered = !spec.contains("networkError") && !spec.contains("hang");
        assert_eq!((num(&ev, "attemptCount"), num(&ev, "requestCount")), (if answered { 1.0 } else { 0.0 }, 1.0), "{spec}");
        if spec.contains("hang") {
            assert_eq!(get(&requests(&stub)[0], "aborted").as_bool(), Some(true), "the hung request is aborted");
        }
        assert_eq!(requests(&stub).len(), 1, "{spec}: a redirect is never followed, nothing is retried early");
        let st = stats(&outbox, "u1").await;
        assert_eq!((num(&st, "failed"), num(&st, "retrying"), num(&st, "gaveUp")), (1.0, 1.0, 0.0));
        assert!(string(&st, "lastError").contains(&expect));
        finish(&db, &[&outbox]).await;
    }
}

#[wasm_bindgen_test]
async fn no_answer_never_uses_up_attempts_and_never_gives_up() {
    // One attempt allowed: a single failed answer would give up. Network errors, timeouts and a
    // missing token are no answers: retried on the backoff schedule until the server answers.
    let db = fresh_db("p-no-answer");
    let stub = stub_fetch(&json(r#"[{"networkError": true}, {"hang": true}, {"networkError": true}]"#), &json(r#"{"status": 201, "body": {"id": "b-late"}}"#));
    let tokens = Function::new_with_args(
        "userId",
        "globalThis.__tokenCalls = (globalThis.__tokenCalls || 0) + 1; if (globalThis.__tokenCalls === 2) throw new Error('no session yet'); return 't';",
    );
    js_sys::Reflect::set(&js_sys::global(), &JsValue::from_str("__tokenCalls"), &JsValue::from_f64(0.0)).unwrap();
    let outbox = open_with(&db, r#"{"maxAttempts": 1, "backoffMs": [1], "requestTimeoutMs": 600}"#, Some(&tokens)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "completed", 5000).await;
    assert_eq!(requests(&stub).len(), 4, "network error, timeout, (no token: nothing sent), network error, success");
    assert_eq!((num(&ev, "attemptCount"), num(&ev, "requestCount")), (0.0, 4.0));
    assert_eq!(string(&ok(outbox.entries(JsValue::UNDEFINED)).await.unchecked_into::<js_sys::Array>().get(0), "backendId"), "b-late");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn permanent_4xx_gives_up_at_once_and_keeps_the_data() {
    for status in [400, 403, 404, 413, 422] {
        let db = fresh_db("p-permanent");
        let spec = format!(r#"[{{"status": {status}, "body": {{"error": "quantity rejected by policy"}}}}]"#);
        let stub = stub_fetch(&json(&spec), &JsValue::NULL);
        let outbox = open_with(&db, "{}", None).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        save(&outbox, 70.0, "{}").await;
        let ev = wait_status(&outbox, "u1", "failed", 3000).await;
        assert_eq!(get(&ev, "gaveUp").as_bool(), Some(true));
        assert!(get(&ev, "nextAttemptAt").is_null());
        assert_eq!(num(&ev, "attemptCount"), 1.0);
        let msg = string(&ev, "errorMessage");
        assert!(msg.contains(&format!("HTTP {status}")) && msg.contains("quantity rejected by policy"), "{msg}");
        let st = stats(&outbox, "u1").await;
        assert_eq!((num(&st, "failed"), num(&st, "gaveUp"), num(&st, "retrying")), (1.0, 1.0, 0.0));
        // Health data is never deleted because of an error.
        let entries = array(&ok(outbox.entries(JsValue::UNDEFINED)).await);
        assert_eq!(entries.len(), 1);
        assert!(get(&entries[0], "backendId").is_null());
        sleep(150).await;
        assert_eq!(requests(&stub).len(), 1, "a given-up event is not retried automatically");
        finish(&db, &[&outbox]).await;
    }
}

#[wasm_bindgen_test]
async fn retry_after_in_seconds_and_as_an_http_date() {
    // Seconds: longer than the backoff, so it wins.
    let db = fresh_db("p-retry-after");
    stub_fetch(&json(r#"[{"status": 503, "headers": {"Retry-After": "120"}}]"#), &JsValue::NULL);
    let outbox = open_with(&db, r#"{"backoffMs": [1000]}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "failed", 3000).await;
    let wait = num(&ev, "nextAttemptAt") - num(&ev, "lastAttemptAt");
    assert!((120_000.0..121_000.0).contains(&wait), "Retry-After: 120 -> {wait}");
    finish(&db, &[&outbox]).await;

    // HTTP date, on a 429.
    let db = fresh_db("p-retry-after-date");
    let at = Date::new(&JsValue::from_f64(Date::now() + 300_000.0));
    let spec = format!(r#"[{{"status": 429, "headers": {{"Retry-After": "{}"}}}}]"#, String::from(at.to_utc_string()));
    stub_fetch(&json(&spec), &JsValue::NULL);
    let outbox = open_with(&db, r#"{"backoffMs": [1000]}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "failed", 3000).await;
    let next = num(&ev, "nextAttemptAt");
    let target = (at.get_time() / 1000.0).floor() * 1000.0; // HTTP dates have whole seconds
    assert!((next - target).abs() <= 1000.0, "next attempt {next} vs Retry-After date {target}");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn unauthorized_asks_for_a_new_token_once_and_retries_at_once() {
    let db = fresh_db("p-401");
    let stub = stub_fetch(&json(r#"[{"status": 401}, {"status": 201, "body": {"id": "b"}}]"#), &JsValue::NULL);
    let token = Function::new_with_args("userId, hint", "return (hint.refresh ? 'fresh-' : 'cached-') + userId;");
    let outbox = open_with(&db, "{}", Some(&token)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 2);
    assert_eq!(header(&reqs[0], "authorization").as_deref(), Some("Bearer cached-u1"));
    assert_eq!(header(&reqs[1], "authorization").as_deref(), Some("Bearer fresh-u1"), "the token function is asked to refresh after a 401");
    assert_eq!(header(&reqs[0], "idempotency-key"), header(&reqs[1], "idempotency-key"));
    assert_eq!(num(&ev, "attemptCount"), 0.0, "the refresh retry is part of the same attempt, which succeeded");
    finish(&db, &[&outbox]).await;

    // Still 401 after the refresh: a retryable failure, not a loop.
    let db = fresh_db("p-401-twice");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 401}"#));
    let outbox = open_with(&db, "{}", Some(&token_fn("return 'stale'"))).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let ev = wait_status(&outbox, "u1", "failed", 3000).await;
    assert_eq!(get(&ev, "gaveUp").as_bool(), Some(false));
    assert!(string(&ev, "errorMessage").contains("401"));
    assert_eq!(num(&ev, "attemptCount"), 1.0, "a 401 after the refresh is a failed answer");
    assert_eq!(requests(&stub).len(), 2);
    finish(&db, &[&outbox]).await;

    // A fixed token string (or none): asked again it is the same, and the retry still goes at
    // once, as the contract's row says (a probe saw one request, then the whole backoff).
    for token in [Some("fixed"), None] {
        let db = fresh_db("p-401-string");
        let stub = stub_fetch(&json(r#"[{"status": 401}, {"status": 201, "body": {"id": "b"}}]"#), &JsValue::NULL);
        let extra = token.map_or("{}".to_string(), |t| format!(r#"{{"token": "{t}"}}"#));
        let outbox = open_with(&db, &extra, None).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        save(&outbox, 70.0, "{}").await;
        let ev = wait_status(&outbox, "u1", "completed", 3000).await;
        assert_eq!(requests(&stub).len(), 2, "{token:?}");
        assert_eq!(num(&ev, "attemptCount"), 0.0);
        finish(&db, &[&outbox]).await;
    }
}

#[wasm_bindgen_test]
async fn a_token_function_that_throws_or_returns_nothing_is_a_retryable_failure() {
    for (body, expect) in [
        ("throw new Error('session lost')", "threw (Error: session lost)"),
        ("return undefined", "returned undefined"),
        ("return Promise.reject(new Error('refresh failed'))", "rejected (Error: refresh failed)"),
        ("return ''", "returned an empty string"),
        ("return new Promise(() => {})", "did not answer within 2000 ms"),
    ] {
        let db = fresh_db("p-token");
        let stub = stub_fetch(&json("[]"), &JsValue::NULL);
        let outbox = open_with(&db, "{}", Some(&token_fn(body))).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        save(&outbox, 70.0, "{}").await;
        let ev = wait_status(&outbox, "u1", "failed", 5000).await;
        assert_eq!(get(&ev, "gaveUp").as_bool(), Some(false));
        let msg = string(&ev, "errorMessage");
        assert!(msg.starts_with("token unavailable: ") && msg.contains(expect), "{body}: {msg}");
        assert_eq!(requests(&stub).len(), 0, "nothing is sent without a token");
        assert_eq!((num(&ev, "attemptCount"), num(&ev, "requestCount")), (0.0, 0.0), "{body}: no request, no answer");
        finish(&db, &[&outbox]).await;
    }
}

#[wasm_bindgen_test]
async fn gives_up_after_max_attempts_with_the_same_idempotency_key_every_time() {
    let db = fresh_db("p-max");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 503}"#));
    let outbox = open_with(&db, r#"{"maxAttempts": 3, "backoffMs": [1]}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    let last = std::rc::Rc::new(std::cell::RefCell::new(JsValue::UNDEFINED));
    eventually(5000, "the event to give up", || {
        let f = only_event(&outbox, "u1");
        let last = last.clone();
        async move {
            let e = f.await;
            let done = get(&e, "gaveUp").as_bool() == Some(true);
            *last.borrow_mut() = e;
            done
        }
    })
    .await;
    let ev = last.borrow().clone();
    assert_eq!((num(&ev, "attemptCount"), num(&ev, "maxAttempts")), (3.0, 3.0));
    assert!(string(&ev, "errorMessage").contains("gave up after 3 failed answers"), "{}", string(&ev, "errorMessage"));
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 3);
    let id = string(&ev, "id");
    assert!(reqs.iter().all(|r| header(r, "idempotency-key").as_deref() == Some(id.as_str())));
    // Only resetForRetry brings it back, with fresh attempts.
    let ids = js_sys::Array::of1(&JsValue::from_str(&id));
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    assert_eq!(ok(outbox.reset_for_retry(ids.into())).await.as_f64(), Some(1.0));
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;
    assert_eq!((num(&ev, "attemptCount"), num(&ev, "requestCount")), (0.0, 4.0), "attempts back to 0, then a success");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn never_more_than_max_concurrent_uploads_in_flight() {
    let db = fresh_db("p-concurrency");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 40}"#));
    let outbox = open_with(&db, r#"{"maxConcurrent": 3, "batchSize": 10}"#, None).await;
    for i in 0..20 {
        save(&outbox, 70.0 + i as f64, r#"{"userId": "u1"}"#).await;
    }
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(8000, "20 completions", || async { num(&stats(&outbox, "u1").await, "completed") == 20.0 }).await;
    assert_eq!(num(&stub, "maxInFlight"), 3.0, "uploads run 3 at a time, never more");
    assert_eq!(requests(&stub).len(), 20, "each event uploaded once");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn uploads_follow_priority_then_age() {
    let db = fresh_db("p-order");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open_with(&db, r#"{"maxConcurrent": 1, "batchSize": 2}"#, None).await;
    let mut ids = Vec::new();
    for (kg, prio) in [(70.0, 0), (71.0, 10), (72.0, 0), (73.0, -5), (74.0, 10)] {
        let e = save(&outbox, kg, &format!(r#"{{"userId": "u1", "priority": {prio}}}"#)).await;
        ids.push(string(&e, "id"));
    }
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(5000, "5 uploads", || async { requests(&stub).len() == 5 }).await;
    let sent: Vec<String> = requests(&stub).iter().map(|r| string(&json(&string(r, "body")), "localId")).collect();
    assert_eq!(sent, [ids[1].clone(), ids[4].clone(), ids[0].clone(), ids[2].clone(), ids[3].clone()]);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn users_are_isolated_and_each_upload_carries_its_owners_token() {
    let db = fresh_db("p-users");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open_with(&db, "{}", Some(&token_fn("return 'tok-' + userId"))).await;
    let a = save(&outbox, 70.0, r#"{"userId": "A"}"#).await;
    let b = save(&outbox, 80.0, r#"{"userId": "B"}"#).await;
    outbox.start(JsValue::from_str("B")).unwrap();
    wait_status(&outbox, "B", "completed", 3000).await;
    sleep(200).await;
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 1, "A's event is not sent while B is logged in");
    assert!(string(&reqs[0], "body").contains(&string(&b, "id")));
    assert_eq!(header(&reqs[0], "authorization").as_deref(), Some("Bearer tok-B"));
    assert_eq!(string(&only_event(&outbox, "A").await, "status"), "pending");

    outbox.start(JsValue::from_str("A")).unwrap();
    wait_status(&outbox, "A", "completed", 3000).await;
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 2);
    assert!(string(&reqs[1], "body").contains(&string(&a, "id")));
    assert_eq!(header(&reqs[1], "authorization").as_deref(), Some("Bearer tok-A"));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn switching_user_mid_pass_sends_nothing_more_for_the_old_one() {
    let db = fresh_db("p-switch");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 150}"#));
    let outbox = open_with(&db, r#"{"maxConcurrent": 1, "batchSize": 10}"#, Some(&token_fn("return 'tok-' + userId"))).await;
    for i in 0..6 {
        save(&outbox, 70.0 + i as f64, r#"{"userId": "A"}"#).await;
    }
    outbox.start(JsValue::from_str("A")).unwrap();
    eventually(3000, "the first upload to start", || async { requests(&stub).len() == 1 }).await;
    outbox.start(JsValue::from_str("B")).unwrap();
    sleep(600).await;
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 1, "no new upload for A after the switch");
    assert!(reqs.iter().all(|r| header(r, "authorization").as_deref() == Some("Bearer tok-A")));
    let st = stats(&outbox, "A").await;
    assert_eq!((num(&st, "completed"), num(&st, "pending"), num(&st, "processing")), (1.0, 5.0, 0.0), "in-flight one recorded, the rest handed back");
    let evs = array(&ok(outbox.events(json(r#"{"userId": "A", "status": "pending"}"#))).await);
    assert!(evs.iter().all(|e| num(e, "attemptCount") == 0.0 && num(e, "requestCount") == 0.0), "unsent claims do not use up attempts");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn stop_halts_new_uploads_and_lets_in_flight_ones_finish() {
    let db = fresh_db("p-stop");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 150}"#));
    let outbox = open_with(&db, r#"{"maxConcurrent": 2}"#, None).await;
    for i in 0..6 {
        save(&outbox, 70.0 + i as f64, r#"{"userId": "u1"}"#).await;
    }
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(3000, "uploads to start", || async { requests(&stub).len() == 2 }).await;
    outbox.stop();
    assert!(outbox.current_user().is_null(), "no current user is null");
    sleep(700).await;
    assert_eq!(requests(&stub).len(), 2, "no upload starts after stop()");
    let st = stats(&outbox, "u1").await;
    assert_eq!((num(&st, "completed"), num(&st, "pending"), num(&st, "processing")), (2.0, 4.0, 0.0));
    // processNow with nobody logged in does nothing.
    let report = ok(outbox.process_now()).await;
    assert_eq!(num(&report, "claimed"), 0.0);
    assert!(get(&report, "userId").is_null());
    assert_eq!(requests(&stub).len(), 2);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn stale_processing_events_are_recovered_and_resent_with_the_same_key() {
    let db = fresh_db("p-stale");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // staleAfterMs is long: only the claimer being gone can make the claim stale here.
    let outbox = open_with(&db, r#"{"staleAfterMs": 600000}"#, None).await;
    save(&outbox, 70.0, r#"{"userId": "u1"}"#).await;
    // Another context took the uploads over, claimed the event and died mid-upload: its
    // liveness lock is not held.
    let other_tab = Store::open(&db, 5, Log { level: LogLevel::Off }).await.unwrap();
    let lead = other_tab.take_lead("u1", "dead-tab", None).await.unwrap().expect("the uploader record");
    let claim = other_tab.claim("u1", &lead, 10, &[], &|_| false, RetryPolicy::default().longest_wait()).await.unwrap();
    let id = claim.items[0].event.id.clone();
    other_tab.close();
    let stale = array(&ok(outbox.stale_events(JsValue::from_str("u1"))).await);
    assert_eq!(stale.iter().map(|e| string(e, "id")).collect::<Vec<_>>(), std::slice::from_ref(&id), "stale at once: its claimer is gone");
    outbox.start(JsValue::from_str("u1")).unwrap();
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;
    assert_eq!(
        (num(&ev, "attemptCount"), num(&ev, "requestCount")),
        (0.0, 2.0),
        "the interrupted request counts as a request (it may have reached the server), not as a failed answer"
    );
    assert_eq!(requests(&stub).len(), 1);
    assert_eq!(header(&requests(&stub)[0], "idempotency-key"), Some(id));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_slow_upload_is_never_stale_for_its_own_outbox() {
    let db = fresh_db("p-slow-not-stale");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 500}"#));
    let outbox = open_with(&db, r#"{"staleAfterMs": 100, "processingIntervalMs": 20}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    sleep(300).await;
    assert!(array(&ok(outbox.stale_events(JsValue::UNDEFINED)).await).is_empty(), "in flight here: not stale");
    wait_status(&outbox, "u1", "completed", 3000).await;
    assert_eq!(requests(&stub).len(), 1, "no second upload of an event still in flight");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn an_event_whose_entry_was_removed_behind_the_api_still_uploads_its_values() {
    // A create carries what it uploads (its metadata): an entry removed outside the API (another
    // app version, a devtools session) loses no measurement, and is not brought back.
    let db = fresh_db("p-orphan");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "body": {"id": "b-orphan"}}"#));
    let outbox = open_with(&db, "{}", None).await;
    let entry = save(&outbox, 70.0, r#"{"userId": "u1"}"#).await;
    ok(raw_delete(&db, "entries", &get(&entry, "id"))).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let ev = wait_status(&outbox, "u1", "completed", 3000).await;
    assert!(get(&ev, "errorMessage").is_null());
    let reqs = requests(&stub);
    assert_eq!(reqs.len(), 1);
    let body = body_json(&reqs[0]);
    assert_eq!((string(&body, "localId"), num(&body, "quantity")), (string(&entry, "id"), 70.0));
    assert!(array(&ok(outbox.entries(JsValue::UNDEFINED)).await).is_empty(), "the removed entry is not recreated");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn cleanup_runs_on_its_interval_and_removes_only_old_completed_events() {
    let db = fresh_db("p-cleanup");
    stub_fetch(&json(r#"[{"status": 201}, {"status": 422}]"#), &JsValue::NULL);
    let outbox = open_with(&db, r#"{"retentionMs": 0, "cleanupIntervalMs": 100, "maxConcurrent": 1}"#, None).await;
    save(&outbox, 70.0, r#"{"userId": "u1"}"#).await;
    save(&outbox, 71.0, r#"{"userId": "u1"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(3000, "the completed event to be cleaned up", || async {
        let evs = events(&outbox, r#"{"userId": "u1"}"#).await;
        evs.len() == 1 && string(&evs[0], "status") == "failed"
    })
    .await;
    assert_eq!(array(&ok(outbox.entries(JsValue::UNDEFINED)).await).len(), 2, "entries are never cleaned up");
    assert_eq!(num(&stats(&outbox, "u1").await, "completed"), 0.0);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_save_wakes_the_processor_at_once() {
    let db = fresh_db("p-wake");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // An hour between passes: only the wake-up can explain a prompt upload.
    let outbox = open_with(&db, r#"{"processingIntervalMs": 3600000}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    sleep(100).await; // the start-up pass has run and found nothing
    save(&outbox, 70.0, "{}").await;
    wait_status(&outbox, "u1", "completed", 2000).await;
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn offline_skips_network_work_until_the_online_event() {
    let db = fresh_db("p-offline");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // The last backoff step is also how often an offline context probes the server in case the
    // platform is wrong: an hour, so no probe happens in this test.
    let outbox = open_with(&db, r#"{"processingIntervalMs": 3600000, "backoffMs": [3600000]}"#, None).await;
    set_online(false);
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    sleep(300).await;
    let report = ok(outbox.process_now()).await;
    assert_eq!(get(&report, "offline").as_bool(), Some(true));
    assert_eq!(requests(&stub).len(), 0, "no request while offline");
    assert_eq!(string(&only_event(&outbox, "u1").await, "status"), "pending", "nothing claimed while offline");
    set_online(true); // also dispatches `online`
    wait_status(&outbox, "u1", "completed", 2000).await;
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_backlog_drains_back_to_back_not_one_batch_per_interval() {
    let db = fresh_db("p-backlog");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open_with(&db, r#"{"processingIntervalMs": 3600000, "batchSize": 5}"#, None).await;
    for i in 0..23 {
        save(&outbox, 60.0 + i as f64, r#"{"userId": "u1"}"#).await;
    }
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(4000, "23 completions with one pass per hour", || async { num(&stats(&outbox, "u1").await, "completed") == 23.0 }).await;
    assert_eq!(requests(&stub).len(), 23);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn process_now_runs_a_pass_and_reports_it() {
    let db = fresh_db("p-now");
    let stub = stub_fetch(&json(r#"[{"networkError": true}]"#), &json(r#"{"status": 201}"#));
    // No answer: the pass ends (the other claim is handed back) and uploads wait out an hour of
    // backoff; only processNow() overrides that wait.
    let outbox = open_with(&db, r#"{"processingIntervalMs": 3600000, "backoffMs": [3600000], "maxConcurrent": 1}"#, None).await;
    let first = save(&outbox, 70.0, r#"{"userId": "u1"}"#).await;
    let second = save(&outbox, 71.0, r#"{"userId": "u1"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(3000, "the network error and the hand-back", || async {
        let st = stats(&outbox, "u1").await;
        num(&st, "failed") == 1.0 && num(&st, "pending") == 1.0 && num(&st, "processing") == 0.0
    })
    .await;
    sleep(200).await;
    assert_eq!(requests(&stub).len(), 1, "nothing more is sent while the server is unreachable");
    let report = ok(outbox.process_now()).await;
    assert_eq!(string(&report, "userId"), "u1");
    assert_eq!(get(&report, "delegated").as_bool(), Some(false));
    assert_eq!((num(&report, "promoted"), num(&report, "claimed"), num(&report, "completed"), num(&report, "requests")), (0.0, 1.0, 1.0, 1.0), "{report:?}");
    // Resolved after the result was recorded; the failed one waits for its own backoff.
    let evs = events(&outbox, r#"{"userId": "u1"}"#).await;
    let status_of = |entry: &JsValue| {
        let e = evs.iter().find(|e| string(e, "entityId") == string(entry, "id")).expect("its event");
        string(e, "status")
    };
    let (failed, sent) = if status_of(&first) == "failed" { (&first, &second) } else { (&second, &first) };
    assert_eq!((status_of(failed), status_of(sent)), ("failed".to_string(), "completed".to_string()));
    assert_eq!(requests(&stub).len(), 2);
    assert_eq!(string(&body_json(&requests(&stub)[1]), "localId"), string(sent, "id"));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn subscribe_sees_every_change_until_unsubscribed() {
    let db = fresh_db("p-subscribe");
    stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 50}"#));
    let outbox = open_with(&db, "{}", None).await;
    let seen = js_sys::Array::new();
    let record = {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            seen.push(&s);
        })
    };
    outbox.start(JsValue::from_str("u1")).unwrap();
    let unsubscribe = outbox.subscribe(record.as_ref().clone()).unwrap();
    eventually(1000, "the initial stats", || async { seen.length() >= 1 }).await;
    assert_eq!(string(&seen.get(0), "userId"), "u1");
    save(&outbox, 70.0, "{}").await;
    eventually(3000, "a completed count of 1", || async { seen.iter().any(|s| num(&s, "completed") == 1.0) }).await;
    assert!(seen.iter().any(|s| num(&s, "pending") == 1.0 || num(&s, "processing") == 1.0), "the save and the claim were seen");
    unsubscribe.call0(&JsValue::NULL).unwrap();
    let n = seen.length();
    save(&outbox, 71.0, "{}").await;
    eventually(3000, "the second upload", || async { num(&stats(&outbox, "u1").await, "completed") == 2.0 }).await;
    sleep(100).await;
    assert_eq!(seen.length(), n, "no calls after unsubscribe");
    // A throwing subscriber does not break the outbox.
    let bad = Function::new_no_args("throw new Error('subscriber bug')");
    outbox.subscribe(bad.into()).unwrap();
    save(&outbox, 72.0, "{}").await;
    eventually(3000, "the third upload", || async { num(&stats(&outbox, "u1").await, "completed") == 3.0 }).await;
    finish(&db, &[&outbox]).await;
}

/// A probe found: a subscriber that an earlier subscriber unsubscribed during a notification was
/// still called in that round, after its unsubscribe had returned.
#[wasm_bindgen_test]
async fn a_subscriber_unsubscribed_by_another_during_a_notification_is_not_called() {
    let db = fresh_db("p-subscribe-off");
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open_with(&db, "{}", None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let state = json(r#"{"a": 0, "afterOff": 0, "off": false}"#);
    let a = Function::new_with_args("g", "return (s) => { g.a++; if (g.offB && s.pending + s.processing >= 1) { g.offB(); g.offB = null; g.off = true; } }")
        .call1(&JsValue::NULL, &state)
        .unwrap();
    let b = Function::new_with_args("g", "return (s) => { if (g.off) g.afterOff++; }").call1(&JsValue::NULL, &state).unwrap();
    outbox.subscribe(a).unwrap();
    let off_b = outbox.subscribe(b).unwrap();
    js_sys::Reflect::set(&state, &JsValue::from_str("offB"), &off_b).unwrap();
    save(&outbox, 70.0, "{}").await;
    eventually(3000, "the upload", || async { num(&stats(&outbox, "u1").await, "completed") == 1.0 }).await;
    sleep(200).await;
    assert!(get(&state, "off").is_truthy(), "a unsubscribed b");
    assert_eq!(num(&state, "afterOff"), 0.0, "b was called after its unsubscribe returned");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn start_is_idempotent_and_never_runs_two_loops() {
    let db = fresh_db("p-idempotent");
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let console = capture_console();
    let outbox = open_with(&db, r#"{"log": "info"}"#, None).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    outbox.start(JsValue::from_str("u1")).unwrap();
    outbox.start(JsValue::from_str("u1")).unwrap();
    sleep(200).await;
    let lines = console_lines(&console);
    restore_console(&console);
    let started = lines.iter().filter(|l| l.contains("processor started")).count();
    assert_eq!(started, 1);
    finish(&db, &[&outbox]).await;
}

fn console_lines(console: &JsValue) -> Vec<String> {
    let lines = get(console, "lines").unchecked_into::<Function>().call0(console).unwrap();
    array(&lines).into_iter().map(|l| l.as_string().unwrap()).collect()
}

fn restore_console(console: &JsValue) {
    get(console, "restore").unchecked_into::<Function>().call0(console).unwrap();
}

#[wasm_bindgen_test]
async fn the_log_shows_the_lifecycle_with_ids_and_never_the_token() {
    let db = fresh_db("p-log");
    stub_fetch(&json(r#"[{"status": 503}, {"status": 201, "body": {"id": "srv-77"}}]"#), &JsValue::NULL);
    let console = capture_console();
    let outbox = open_with(&db, r#"{"log": "info", "backoffMs": [1]}"#, Some(&token_fn("return 'SECRET-TOKEN-123'"))).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0, "{}").await;
    wait_status(&outbox, "u1", "completed", 3000).await;
    outbox.close();
    let lines = console_lines(&console);
    restore_console(&console);
    let ev_id = only_event_id(&lines);
    let entry_id = string(&entry, "id");
    let has = |needle: &str, id: &str| lines.iter().any(|l| l.contains(needle) && l.contains(id));
    assert!(has("saved", &entry_id) && has("saved", &ev_id), "save line: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("pass started") && l.contains("batch size 10")), "{lines:#?}");
    // The seed's "marked as processing (attempt n)": the 503 counted, so the second is attempt 2.
    assert!(has("claimed (attempt 1 of 5; request 1)", &ev_id) && has("claimed (attempt 2 of 5; request 2)", &ev_id), "{lines:#?}");
    assert!(has("uploading", &ev_id), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(&ev_id) && l.contains("failed (HTTP 503") && l.contains("next attempt")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(&ev_id) && l.contains("completed") && l.contains("srv-77")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("cleanup")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("SECRET-TOKEN-123")), "a token reached the console");
    wait_closed(&db).await;
    ok(delete_db(&db)).await;

    // "warn" shows only what needs attention; "off" nothing.
    for (level, expect_lines) in [("warn", true), ("off", false)] {
        let db = fresh_db("p-log-level");
        stub_fetch(&json(r#"[{"status": 422}]"#), &JsValue::NULL);
        let lines = lines_until_it_fails(&db, &format!(r#"{{"log": "{level}"}}"#), None).await;
        if expect_lines {
            assert!(!lines.is_empty() && lines.iter().all(|l| l.starts_with("warn")), "{lines:#?}");
            assert!(lines.iter().any(|l| l.contains("gave up")), "{lines:#?}");
            assert!(!lines.iter().any(|l| l.contains("saved") || l.contains("uploading")), "{lines:#?}");
        } else {
            assert!(lines.is_empty(), "{lines:#?}");
        }
        ok(delete_db(&db)).await;
    }
}

/// The library's console lines from opening `db` with `extra` (and `token`) through one save of
/// u1 until its event has failed, and the outbox closed.
async fn lines_until_it_fails(db: &str, extra: &str, token: Option<&Function>) -> Vec<String> {
    let console = capture_console();
    let outbox = open_with(db, extra, token).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0, "{}").await;
    wait_status(&outbox, "u1", "failed", 3000).await;
    outbox.close();
    let lines: Vec<String> = console_lines(&console).into_iter().filter(|l| l.contains("[progress-outbox]")).collect();
    restore_console(&console);
    wait_closed(db).await;
    lines
}

/// At the default "warn", a token setup that cannot work (a function that returns nothing, or a
/// token the server refuses even after a refresh) is on the console, never the token itself.
#[wasm_bindgen_test]
async fn a_broken_token_setup_shows_at_warn() {
    for (token_body, answers, why) in
        [("return undefined", r#"[]"#, "token unavailable"), ("return 'STALE-TOKEN-9'", r#"[{"status": 401}, {"status": 401}]"#, "401")]
    {
        let db = fresh_db("p-log-token");
        stub_fetch(&json(answers), &json(r#"{"status": 401}"#));
        let lines = lines_until_it_fails(&db, r#"{"log": "warn", "backoffMs": [60000]}"#, Some(&token_fn(token_body))).await;
        assert!(lines.iter().any(|l| l.starts_with("warn") && l.contains("token option") && l.contains(why)), "{token_body}: {lines:#?}");
        assert!(lines.iter().all(|l| !l.contains("STALE-TOKEN-9")), "a token reached the console: {lines:#?}");
        ok(delete_db(&db)).await;
    }
}

fn only_event_id(lines: &[String]) -> String {
    let line = lines.iter().find(|l| l.contains("outbox event")).expect("a save line");
    let after = &line[line.find("outbox event ").unwrap() + "outbox event ".len()..];
    after.split_whitespace().next().unwrap().to_string()
}
