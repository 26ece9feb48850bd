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

/// Another context steals u1's upload lock and hands it on at once (to the next in line).
async fn steal_and_hand_on(db: &str) {
    let thief = hold_lock(&lock_name(db, "u1"), true);
    eventually(2_000, "the steal", || async { get(&thief, "granted").is_truthy() }).await;
    call(&thief, "release", &[]);
}

fn each_key_sent_once(stub: &JsValue) {
    for k in keys(stub) {
        assert_eq!(sent(stub, &k), 1, "{k} was sent twice: {:?}", keys(stub));
    }
}

#[wasm_bindgen_test]
async fn f6_a_stolen_lock_stops_the_old_uploader_mid_pass() {
    let db = fresh_db("lead-steal");
    // One pass claims all three (batchSize 3) and sends them one at a time (maxConcurrent 1).
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 5000, "batchSize": 3, "maxConcurrent": 1, "backoffMs": [100]}"#;
    let (a, b, stub) = mid_pass(&db, cfg).await;
    assert_eq!(keys_sent_with(&stub, "Bearer A").len(), 1);

    // Another context steals the upload lock (and hands it on at once: b is next in line).
    steal_and_hand_on(&db).await;
    eventually(5_000, "a notices it lost the lead", || async { !a.is_leader() }).await;
    call(&stub, "release", &[JsValue::from_str("first")]);

    eventually(10_000, "every event delivered", || async { all_completed(&b, 3).await }).await;
    let by_a = keys_sent_with(&stub, "Bearer A");
    let by_b = keys_sent_with(&stub, "Bearer B");
    assert_eq!(by_a.len(), 1, "the old uploader sent more after losing the lead: A {by_a:?}, B {by_b:?}");
    assert_eq!(by_b.len(), 2, "the new uploader sends the rest: A {by_a:?}, B {by_b:?}");
    each_key_sent_once(&stub);
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
    each_key_sent_once(&stub);
    finish(&db, &[&a, &b]).await;
}

/// A review found: when `navigator.locks.query()` gave no answer within a second (a stalled main
/// thread, a thawing page), stale claims were judged by the clocks alone, as where there are no
/// Web Locks: the new uploader took a claim of a live context whose request was still in flight,
/// and sent it again. Now an unanswered query judges no other context's claim.
#[wasm_bindgen_test]
async fn a_locks_query_that_does_not_answer_never_makes_a_live_claim_stale() {
    let db = fresh_db("lead-query-hangs");
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 8000, "staleAfterMs": 500, "batchSize": 1, "maxConcurrent": 1, "backoffMs": [100]}"#;
    let (a, b, stub) = mid_pass(&db, cfg).await;
    let first = keys_sent_with(&stub, "Bearer A");
    assert_eq!(first.len(), 1);
    hang_locks_query(true);
    // b takes the uploads over while a's first request is still in flight (a lives).
    steal_and_hand_on(&db).await;
    eventually(5_000, "b uploads", || async { b.is_leader() }).await;
    // Well past staleAfterMs, with b running a pass every 100 ms.
    sleep(2_500).await;
    let resent = sent(&stub, &first[0]);
    hang_locks_query(false);
    assert_eq!(resent, 1, "the event in flight in a live context was sent again: A {:?}, B {:?}", first, keys_sent_with(&stub, "Bearer B"));
    call(&stub, "release", &[JsValue::from_str("first")]);
    eventually(10_000, "every event delivered", || async { all_completed(&b, 3).await }).await;
    each_key_sent_once(&stub);
    finish(&db, &[&a, &b]).await;
}

/// A review found: the uploader wrote its heartbeat only when a pass started and when results were
/// recorded. One upload whose token function and request each took most of `requestTimeoutMs`
/// outlasted what followers wait for (`2 × processingIntervalMs + requestTimeoutMs + 1 s`), and a
/// follower stole the lock of a live uploader mid-upload. Now the heartbeat goes on during a pass.
#[wasm_bindgen_test]
async fn a_slow_token_and_a_slow_server_in_one_upload_do_not_make_a_live_uploader_look_gone() {
    let db = fresh_db("lead-slow-upload");
    let stub = stub_fetch(&json(r#"[{"hold": "slow"}]"#), &json(r#"{"status": 201}"#));
    // Followers take over after 2 × 100 + 4000 + 1000 = 5.2 s without a heartbeat change; this one
    // upload takes about 3 s (token) + 2.8 s (server), each well under requestTimeoutMs.
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 4000, "backoffMs": [100]}"#;
    let slow_token = js_sys::Function::new_with_args("userId", "return new Promise((r) => setTimeout(() => r('A'), 3000))");
    let c = config(&db, cfg);
    set(&c, "token", &slow_token);
    let a = open_with(c).await;
    let b = open_as(&db, cfg, "B").await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a leads", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    resolves(10_000, "saveWeight", a.save_weight(JsValue::from_f64(70.0), json(r#"{"userId": "u1"}"#))).await;
    eventually(6_000, "the upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("slow")]).is_truthy() }).await;
    sleep(2_800).await;
    let (a_leads, b_leads) = (a.is_leader(), b.is_leader());
    call(&stub, "release", &[JsValue::from_str("slow")]);
    assert!(a_leads && !b_leads, "a live uploader lost its lead mid-upload (a leads: {a_leads}, b leads: {b_leads})");
    eventually(5_000, "the upload completes", || async { all_completed(&a, 1).await }).await;
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&a, &b]).await;
}

/// Review AA (H1): `resetForRetry` asked the Web Locks who is alive before it read the events. A
/// context opened after the question (missing from its answer) that claimed an event before the
/// answer came (this page frozen in between, say) looked gone: its claim was reset while its
/// request was in flight, and the event sent again. Now the claims are read first, and only
/// those the answer can judge are.
#[wasm_bindgen_test]
async fn reset_for_retry_never_resets_a_claim_made_after_it_asked_who_is_alive() {
    let db = fresh_db("lead-reset-after-question");
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 8000, "backoffMs": [200], "batchSize": 1, "maxConcurrent": 3}"#;
    let stub = stub_fetch(&json(r#"[{"status": 503}, {"hold": "retry"}]"#), &json(r#"{"status": 201}"#));
    // The first uploader: the event fails once (503, due again 200 ms later), then it goes away.
    let gone = open_as(&db, cfg, "A0").await;
    gone.start(JsValue::from_str("u1")).unwrap();
    let entry = string(&save(&gone, 70.0).await, "id");
    eventually(5_000, "the first upload failed", || async { string(&event_of(&gone, "u1", &entry).await, "status") == "failed" }).await;
    let event = event_of(&gone, "u1", &entry).await;
    let id = string(&event, "id");
    gone.close();
    sleep(300).await;
    // b is asked to retry it; the answer to "who is alive" comes late.
    let b = open_as(&db, cfg, "B").await;
    let late = delay_locks_query();
    let reset = b.reset_for_retry(js_sys::Array::of1(&JsValue::from_str(&id)).into());
    // a, opened meanwhile, takes the uploads over and sends the retry (held by the server).
    let a = open_as(&db, cfg, "A").await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a sends the retry", || async { call(&stub, "isHeld", &[JsValue::from_str("retry")]).is_truthy() }).await;
    call(&late, "release", &[]);
    resolves(5_000, "resetForRetry", reset).await;
    // A new save wakes a's pass (held open by the request out, it claims what comes): a claim
    // reset under it would be claimed and sent again now.
    save(&a, 71.0).await;
    eventually(5_000, "the new save sent", || async { requests(&stub).len() >= 3 }).await;
    sleep(500).await;
    assert_eq!(sent(&stub, &id), 2, "sent again while its retry was in flight (asked {} times)", num(&late, "asked"));
    call(&stub, "release", &[JsValue::from_str("retry")]);
    eventually(10_000, "both delivered", || async { all_completed(&a, 2).await }).await;
    assert_eq!(sent(&stub, &id), 2);
    finish(&db, &[&a, &b]).await;
}

/// The claim filter of the fix above, on its own (review AB, AB-2): `resetForRetry` reads claim k
/// of a context that is gone, asks who is alive, and, before the answer comes, a context opened
/// after the question claims the event again (claim k + 1). The answer does not name that
/// context, so it would look gone too: only claim k may be judged by it, and claim k + 1 is left
/// in flight. Written by hand (another context's records and liveness lock), so every step
/// happens inside the one second the question may take; a second event, claimed by the context
/// that is gone and left so, must be reset: that shows the answer came in time (else every claim
/// counts as alive, and the first event would be left alone whatever the filter).
#[wasm_bindgen_test]
async fn reset_for_retry_judges_only_the_claim_it_read_before_asking_who_is_alive() {
    let db = fresh_db("lead-reset-claim-number");
    let b = open_as(&db, r#"{"processingIntervalMs": 60000}"#, "B").await;
    let mut ids = Vec::new();
    for kg in [70.0, 71.0] {
        let entry = string(&save_for(&b, kg).await, "id");
        ids.push(string(&event_of(&b, "u1", &entry).await, "id"));
    }
    let claim = |id: &str, n: f64, owner: &str| {
        let (db, id, owner) = (db.clone(), id.to_owned(), owner.to_owned());
        async move {
            let record = ok(raw_get(&db, "events", &id)).await;
            as_claimed(&record, n, &owner);
            ok(raw_put(&db, "events", &record, &JsValue::UNDEFINED)).await;
        }
    };
    // Claim 1 of each, by a context that is gone (its liveness lock is not held).
    for id in &ids {
        claim(id, 1.0, "gone").await;
    }
    let late = delay_locks_query();
    let asked_at = js_sys::Date::now();
    let reset = b.reset_for_retry(ids.iter().map(|id| JsValue::from_str(id)).collect::<js_sys::Array>().into());
    eventually(900, "the question asked", || async { num(&late, "asked") >= 1.0 }).await;
    // A context opened after the question: alive, and claiming the first event again.
    let alive = hold_lock(&progress_outbox::domain::lease::alive_lock_name(&db, "newcomer"), false);
    eventually(900, "its liveness lock held", || async { get(&alive, "granted").is_truthy() }).await;
    claim(&ids[0], 2.0, "newcomer").await;
    call(&late, "release", &[]);
    let took = js_sys::Date::now() - asked_at;
    let count = resolves(5_000, "resetForRetry", reset).await;
    let first = ok(raw_get(&db, "events", &ids[0])).await;
    let second = ok(raw_get(&db, "events", &ids[1])).await;
    assert_eq!(string(&second, "status"), "pending", "the gone context's claim was not reset: the answer came too late ({took} ms)? {second:?}");
    assert_eq!(count.as_f64(), Some(1.0), "reset a claim made after the question: {first:?}");
    assert_eq!(string(&first, "status"), "processing", "{first:?}");
    assert_eq!(num(&first, "claims"), 2.0, "{first:?}");
    call(&alive, "release", &[]);
    finish(&db, &[&b]).await;
}
