//! Fault 5: offline stretches parked data. Attempts were counted at claim time, so a few minutes
//! without network (or without a token) turned every queued measurement into "gave up". Now only
//! server answers count toward maxAttempts; no answer (network error, timeout, token unavailable)
//! retries on the backoff schedule and never gives up; while the platform reports offline no
//! upload starts, and `online` wakes the processor. The event shows requestCount (requests sent)
//! and attemptCount (failed answers).

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

#[wasm_bindgen_test]
async fn f5_answerless_failures_never_give_up_nor_count() {
    let db = fresh_db("offline-stretch");
    restore_online();
    let stub = stub_fetch(&json("[]"), &json(r#"{"networkError": true}"#));
    let token = token_switch("tok");
    // maxAttempts 2: two counted failures would give up. The backoff is short so passes repeat.
    let c = config(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 200, "backoffMs": [50], "maxAttempts": 2}"#);
    set(&c, "token", &get(&token, "fn"));
    let outbox = open_with(c).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");

    let check = |phase: &'static str| {
        let (outbox, stub, id) = (&outbox, &stub, id.clone());
        async move {
            let e = event_of(outbox, "u1", &id).await;
            assert!(!get(&e, "gaveUp").is_truthy(), "{phase}: gave up: {e:?}");
            assert_ne!(string(&e, "status"), "completed", "{phase}: {e:?}");
            assert_eq!(num(&e, "attemptCount"), 0.0, "{phase}: an answer-less failure was counted: {e:?}");
            let key = string(&e, "id");
            let rc = num(&e, "requestCount");
            let seen = sent(stub, &key) as f64;
            assert!(rc == seen || rc + 1.0 == seen, "{phase}: requestCount {rc} vs {seen} requests sent: {e:?}");
            let s = stats(outbox, "u1").await;
            assert_eq!(num(&s, "gaveUp"), 0.0, "{phase}: {s:?}");
        }
    };

    // Network errors.
    eventually(10_000, "four network errors", || async { requests(&stub).len() >= 4 }).await;
    check("network errors").await;
    // Timeouts (the server never answers within requestTimeoutMs).
    set(&stub, "fallback", &json(r#"{"hang": true}"#));
    let before = requests(&stub).len();
    eventually(10_000, "three timeouts", || async { requests(&stub).len() >= before + 3 }).await;
    check("timeouts").await;
    // The token function fails (no session): nothing is sent, nothing counted.
    set(&token, "mode", &JsValue::from_str("reject"));
    set(&stub, "fallback", &json(r#"{"status": 201, "body": {"id": "b-1"}}"#));
    sleep(300).await; // a request already started may still finish as a timeout
    let (calls, sent_before) = (num(&token, "calls"), requests(&stub).len());
    eventually(10_000, "three token failures", || async { num(&token, "calls") >= calls + 3.0 }).await;
    assert_eq!(requests(&stub).len(), sent_before, "nothing is sent without a token");
    check("token unavailable").await;
    let e = event_of(&outbox, "u1", &id).await;
    let why = opt_string(&e, "errorMessage").unwrap_or_default();
    assert!(why.contains("token"), "{why:?}");

    // Back: the event is delivered, still with no counted failure; requestCount says how many went out.
    set(&token, "mode", &JsValue::from_str("ok"));
    eventually(10_000, "the upload once everything works", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "completed" }).await;
    let e = event_of(&outbox, "u1", &id).await;
    assert_eq!(num(&e, "attemptCount"), 0.0, "{e:?}");
    let key = string(&e, "id");
    assert_eq!(num(&e, "requestCount"), sent(&stub, &key) as f64, "{e:?}");
    assert!(num(&e, "requestCount") >= 8.0, "{e:?}");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f5_offline_starts_no_request_and_online_wakes_the_processor() {
    let db = fresh_db("offline-flag");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "body": {"id": "b-1"}}"#));
    set_online(false);
    // Passes only when woken (the interval is a minute); the offline probe (at the last backoff
    // step, for a platform that reports offline wrongly) is an hour away.
    let outbox = open(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 1000, "backoffMs": [3600000]}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    process_now(&outbox, 5_000).await;
    sleep(300).await;
    assert_eq!(requests(&stub).len(), 0, "a request started while navigator.onLine is false");
    let e = event_of(&outbox, "u1", &id).await;
    assert_eq!(string(&e, "status"), "pending", "{e:?}");
    assert_eq!(num(&e, "attemptCount"), 0.0, "{e:?}");
    let offline_requests = get(&e, "requestCount");

    // The `online` event alone (no processNow, no tick) gets it uploaded.
    set_online(true);
    eventually(5_000, "the upload after `online`", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "completed" }).await;
    let e = event_of(&outbox, "u1", &id).await;
    assert_eq!(requests(&stub).len(), 1);
    assert_eq!(num(&e, "attemptCount"), 0.0, "{e:?}");
    assert_eq!(offline_requests.as_f64(), Some(0.0), "requestCount while offline");
    assert_eq!(num(&e, "requestCount"), 1.0, "{e:?}");
    finish(&db, &[&outbox]).await;
}

/// The uploader's heartbeat count of `user` (one per turn of its processing loop).
async fn beats(db: &str, user: &str) -> f64 {
    num(&ok(raw_get(db, "meta", &format!("leader:{user}"))).await, "beat")
}

/// A retry due while no claim can take it (offline, the probe minutes away) woke the processing
/// loop at its due time; the pass then returned at "offline" without taking it off the schedule,
/// so the loop was re-armed at 1 ms and turned at once, over and over (a heartbeat write, a read
/// of the claims and a subscriber refresh each time) until the network came back (review X, F1).
#[wasm_bindgen_test]
async fn f5_a_retry_due_while_offline_does_not_spin_the_uploader() {
    let db = fresh_db("offline-due-spin");
    restore_online();
    let stub = stub_fetch(&json(r#"[{"status": 503}]"#), &json(r#"{"status": 201, "body": {"id": "b-1"}}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 60000, "backoffMs": [1500], "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let id = string(&save(&outbox, 70.0).await, "id");
    eventually(5_000, "the 503 recorded", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "failed" }).await;
    set_online(false);
    assert_eq!(string(&event_of(&outbox, "u1", &id).await, "status"), "failed", "offline before its retry");
    sleep(1_800).await; // its 1.5 s backoff is over; the offline probe is 5 minutes away
    assert_eq!(string(&event_of(&outbox, "u1", &id).await, "status"), "failed", "due, and not sent while offline");
    let before = beats(&db, "u1").await;
    sleep(2_000).await;
    let turns = beats(&db, "u1").await - before;
    assert!(turns <= 2.0, "{turns} turns of the processing loop in 2 s while offline (its interval is a minute)");
    // Back online: the retry goes at once.
    set_online(true);
    eventually(5_000, "the retry once online", || async { string(&event_of(&outbox, "u1", &id).await, "status") == "completed" }).await;
    assert_eq!(sent(&stub, &string(&event_of(&outbox, "u1", &id).await, "id")), 2);
    restore_online();
    finish(&db, &[&outbox]).await;
}

/// The same while the server is unreachable: an event's own wait (its backoff step) can end long
/// before the outbox-wide wait after no answer (the streak's step), e.g. for an event a
/// `processNow()` sent during the outage; the loop then spun from the one to the other.
#[wasm_bindgen_test]
async fn f5_a_retry_due_before_the_unreachable_servers_backoff_ends_does_not_spin_the_uploader() {
    let db = fresh_db("offline-until-spin");
    restore_online();
    let stub = stub_fetch(&json("[]"), &json(r#"{"networkError": true}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 1000, "backoffMs": [200, 4000], "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0).await;
    // No answer twice: the outbox waits 4 s (the streak's second step).
    eventually(5_000, "two requests without an answer", || async { requests(&stub).len() >= 2 }).await;
    sleep(100).await;
    // A new event sent now (forced) fails too: its own wait is the first step, 200 ms.
    let second = string(&save(&outbox, 71.0).await, "id");
    process_now(&outbox, 5_000).await;
    assert_eq!(num(&event_of(&outbox, "u1", &second).await, "requestCount"), 1.0);
    sleep(300).await; // due on its own, while the outbox still waits
    let before = beats(&db, "u1").await;
    sleep(2_000).await;
    let turns = beats(&db, "u1").await - before;
    assert!(turns <= 2.0, "{turns} turns of the processing loop in 2 s while the server's backoff runs");
    finish(&db, &[&outbox]).await;
}

/// u1's `processNow()` whose pass holds a request (the second event's, answered with the stub's
/// third response: a "hold"), u1's first event waiting out a 60 s backoff after two requests
/// without an answer; then a switch to u2, whose pass runs and ends. Returns the outbox, the stub,
/// u1's call (still pending) and when it was made.
async fn u1_pass_held_then_u2(db: &str, responses: &str) -> (progress_outbox::Outbox, JsValue, js_sys::Promise, f64) {
    restore_online();
    let stub = stub_fetch(&json(responses), &json(r#"{"status": 201}"#));
    let outbox = open(db, r#"{"processingIntervalMs": 60000, "requestTimeoutMs": 30000, "backoffMs": [200, 60000], "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0).await;
    // No answer twice: the processing loop waits 60 s, so only a forced pass sends now.
    eventually(5_000, "two requests without an answer", || async { requests(&stub).len() >= 2 }).await;
    sleep(100).await;
    save(&outbox, 71.0).await;
    let asked_at = js_sys::Date::now();
    let asked = outbox.process_now();
    eventually(5_000, "the second event's request held", || async { requests(&stub).len() >= 3 }).await;
    outbox.start(JsValue::from_str("u2")).unwrap();
    // A pass of u2 runs (and ends) while u1's still waits for its request.
    let r2 = process_now(&outbox, 5_000).await;
    assert_eq!(opt_string(&r2, "userId").as_deref(), Some("u2"), "{r2:?}");
    (outbox, stub, asked, asked_at)
}

/// A `processNow()` whose pass still waits for a hung request when the user is switched answers,
/// at its bound, with what that pass did so far. It read the counts of the last pass to start,
/// the next user's by then, so it answered zero claimed (review S, L4).
#[wasm_bindgen_test]
async fn a_timed_out_process_now_answers_its_own_users_counts_after_a_switch() {
    let db = fresh_db("pn-switch-counts");
    let (outbox, stub, asked, _) = u1_pass_held_then_u2(&db, r#"[{"networkError": true}, {"networkError": true}, {"hold": "second"}]"#).await;
    let r1 = resolves(15_000, "u1's processNow()", asked).await;
    assert_eq!(opt_string(&r1, "userId").as_deref(), Some("u1"), "{r1:?}");
    assert_eq!(get(&r1, "finished"), JsValue::FALSE, "{r1:?}");
    assert_eq!(num(&r1, "claimed"), 1.0, "u1's pass claimed the second event: {r1:?}");
    call(&stub, "release", &[JsValue::from_str("second")]);
    finish(&db, &[&outbox]).await;
}

/// The same after switching back (u1, u2, u1): the first session's `processNow()` answers with
/// its own pass's counts, not with those of the pass the new session of the same user runs beside
/// it. It took the latest running pass of its user, so it answered the new pass's two claims
/// (review AB, AB-5).
#[wasm_bindgen_test]
async fn a_timed_out_process_now_answers_its_own_sessions_counts_after_switching_back() {
    let db = fresh_db("pn-switch-back-counts");
    let responses = r#"[{"networkError": true}, {"networkError": true}, {"hold": "second"}, {"hold": "third"}, {"hold": "fourth"}]"#;
    let (outbox, stub, asked, asked_at) = u1_pass_held_then_u2(&db, responses).await;
    // u1 again: its new session's pass claims two more events and holds both requests, while
    // the first session's pass still waits for its one.
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 72.0).await;
    save(&outbox, 73.0).await;
    let again = outbox.process_now();
    eventually(5_000, "the new session's two requests held", || async { requests(&stub).len() >= 5 }).await;
    // The first call answers at its 9 s bound: only if the new session's pass runs by then can
    // the answer take the wrong pass's counts.
    let by = js_sys::Date::now() - asked_at;
    assert!(by < 8_000.0, "inconclusive: the new session's pass ran {by} ms after the first call, past its bound");
    let r1 = resolves(15_000, "the first session's processNow()", asked).await;
    assert_eq!(opt_string(&r1, "userId").as_deref(), Some("u1"), "{r1:?}");
    assert_eq!(get(&r1, "finished"), JsValue::FALSE, "{r1:?}");
    assert_eq!(num(&r1, "claimed"), 1.0, "the first session's pass claimed one event: {r1:?}");
    for hold in ["second", "third", "fourth"] {
        call(&stub, "release", &[JsValue::from_str(hold)]);
    }
    let r3 = resolves(15_000, "the new session's processNow()", again).await;
    assert_eq!(num(&r3, "claimed"), 2.0, "{r3:?}");
    finish(&db, &[&outbox]).await;
}
