//! Several `Outbox` instances on one database, as several tabs would have: one uploader per
//! user (Web Locks, or the IndexedDB lease where they are missing), takeover when the leader
//! goes (closed, or frozen with the lock), cross-context wake-up, stats, processNow, and stale
//! claims judged by the claimer's liveness.

use js_sys::{Date, Function, Promise};
use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const FAST: &str = r#"{"processingIntervalMs": 50, "requestTimeoutMs": 500, "backoffMs": [50]}"#;

async fn pair(db: &str, extra: &str) -> (Outbox, Outbox) {
    let settings = merged(FAST, extra);
    (open(db, &settings).await, open(db, &settings).await)
}

fn keys_posted(stub: &JsValue) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in requests(stub) {
        *m.entry(get(&get(&r, "headers"), "idempotency-key").as_string().unwrap()).or_insert(0) += 1;
    }
    m
}

async fn save_for(o: &Outbox, user: &str, kg: f64) {
    let opts = json("{}");
    set(&opts, "userId", &JsValue::from_str(user));
    ok(o.save_weight(JsValue::from_f64(kg), opts)).await;
}

async fn completed(o: &Outbox, user: &str) -> f64 {
    num(&stats(o, user).await, "completed")
}

/// Writes user u1's uploader record as another context (`owner`) would have, its beat stamped
/// `at` on that context's wall clock (which followers never trust: they watch the beat change).
async fn write_beat(db: &str, owner: &str, at: f64) {
    let record = json(r#"{"gen": 1, "beat": 7}"#);
    set(&record, "owner", &JsValue::from_str(owner));
    set(&record, "beatAt", &JsValue::from_f64(at));
    ok(raw_put(db, "meta", &record, &JsValue::from_str("leader:u1"))).await;
}

/// Two instances of one user: exactly one uploads, and `n` saves made through both reach the
/// server once each. Returns the instances, leader first.
async fn one_uploader_for(db: &str, n: usize) -> (Outbox, Outbox) {
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 5}"#));
    let (a, b) = pair(db, "{}").await;
    a.start(JsValue::from_str("u1")).unwrap();
    b.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a leader", || async { a.is_leader() || b.is_leader() }).await;
    sleep(300).await;
    assert!(a.is_leader() ^ b.is_leader(), "exactly one uploader");
    for i in 0..n {
        save_for(if i % 2 == 0 { &a } else { &b }, "u1", 60.0 + i as f64).await;
    }
    eventually(5000, "every save to complete", || async { completed(&a, "u1").await == n as f64 }).await;
    let keys = keys_posted(&stub);
    assert_eq!(keys.len(), n);
    assert!(keys.values().all(|k| *k == 1), "a key was POSTed twice: {keys:?}");
    if a.is_leader() {
        (a, b)
    } else {
        (b, a)
    }
}

#[wasm_bindgen_test]
async fn one_uploader_per_user_and_every_key_posted_once() {
    let db = fresh_db("m-one");
    let (a, b) = one_uploader_for(&db, 20).await;
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn when_the_leader_closes_a_follower_takes_over_at_once() {
    let db = fresh_db("m-takeover");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // An hour between passes: only the takeover itself can explain a prompt upload.
    let (a, b) = pair(&db, r#"{"processingIntervalMs": 3600000}"#).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a to lead", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    sleep(100).await;
    assert!(!b.is_leader());
    a.close();
    eventually(1000, "b to take over", || async { b.is_leader() }).await;
    save_for(&b, "u1", 70.0).await;
    eventually(2000, "the upload by b", || async { completed(&b, "u1").await == 1.0 }).await;
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&b]).await;
}

#[wasm_bindgen_test]
async fn different_users_upload_side_by_side() {
    let db = fresh_db("m-users");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let (a, b) = pair(&db, "{}").await;
    a.start(JsValue::from_str("alice")).unwrap();
    b.start(JsValue::from_str("bob")).unwrap();
    eventually(2000, "both to lead their own user", || async { a.is_leader() && b.is_leader() }).await;
    save_for(&a, "alice", 60.0).await;
    save_for(&b, "bob", 90.0).await;
    eventually(3000, "both uploads", || async { completed(&a, "alice").await == 1.0 && completed(&b, "bob").await == 1.0 }).await;
    assert_eq!(requests(&stub).len(), 2);
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn a_save_elsewhere_wakes_the_leader_and_subscribers_everywhere_see_it() {
    let db = fresh_db("m-wake");
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let (a, b) = pair(&db, r#"{"processingIntervalMs": 3600000}"#).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a to lead", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    let seen = js_sys::Array::new();
    let cb = {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            seen.push(&s);
        })
    };
    let _off = b.subscribe(cb.as_ref().clone()).unwrap();
    sleep(200).await;
    save_for(&b, "u1", 70.0).await; // saved in the follower...
                                    // ...uploaded by the leader within moments (its own timer would wait an hour)...
    eventually(2000, "the leader's upload", || async { completed(&a, "u1").await == 1.0 }).await;
    // ...and the follower's subscriber saw the completion made in the other context.
    eventually(2000, "b's subscriber to see it", || async { seen.iter().any(|s| num(&s, "completed") == 1.0) }).await;
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn process_now_in_a_follower_runs_the_pass_in_the_leader() {
    let db = fresh_db("m-now");
    let stub = stub_fetch(&json(r#"[{"networkError": true}]"#), &json(r#"{"status": 201}"#));
    // No answer: the leader's pass ends and its uploads wait out an hour of backoff; only
    // processNow() (forced, wherever it is called) overrides that wait.
    let (a, b) = pair(&db, r#"{"processingIntervalMs": 3600000, "backoffMs": [3600000], "maxConcurrent": 1}"#).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a to lead", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    sleep(100).await;
    save_for(&b, "u1", 70.0).await; // wakes the leader: its request meets a network error
    save_for(&b, "u1", 71.0).await;
    eventually(2000, "the failed attempt", || async {
        let st = stats(&a, "u1").await;
        num(&st, "failed") == 1.0 && num(&st, "pending") == 1.0 && num(&st, "processing") == 0.0
    })
    .await;
    sleep(100).await;
    assert_eq!(requests(&stub).len(), 1, "the leader waits out the backoff");
    let report = ok(b.process_now()).await;
    assert_eq!(get(&report, "delegated").as_bool(), Some(true), "{report:?}");
    assert_eq!((num(&report, "claimed"), num(&report, "completed")), (1.0, 1.0), "{report:?}");
    assert!(!b.is_leader());
    assert_eq!(completed(&b, "u1").await, 1.0);
    assert_eq!(requests(&stub).len(), 2);
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn a_claim_of_a_live_context_is_never_stale_elsewhere_however_long_it_waits() {
    let db = fresh_db("m-stale-alive");
    let stub = stub_fetch(&json("[]"), &json(r#"{"hang": true}"#));
    // a's upload hangs (until its 5 s timeout); b watches with a short staleAfterMs.
    let a = open(&db, r#"{"processingIntervalMs": 3600000, "requestTimeoutMs": 5000}"#).await;
    let b = open(&db, r#"{"staleAfterMs": 300}"#).await;
    a.start(JsValue::from_str("u1")).unwrap();
    save_for(&a, "u1", 70.0).await;
    eventually(2000, "a's upload to be in flight", || async { requests(&stub).len() == 1 }).await;
    assert_eq!(num(&stats(&b, "u1").await, "processing"), 1.0);
    // Its claimer is alive (a hung page looks the same from here): its request may be in flight,
    // so b never takes the claim for stale, long past staleAfterMs, and never resets it.
    for _ in 0..4 {
        assert!(array(&ok(b.stale_events(JsValue::from_str("u1"))).await).is_empty(), "stale while its context lives");
        sleep(400).await;
    }
    let ids: js_sys::Array = array(&ok(b.events(json(r#"{"userId": "u1"}"#))).await).iter().map(|e| get(e, "id")).collect();
    assert_eq!(ok(b.reset_for_retry(ids.into())).await.as_f64(), Some(0.0), "reset while its context lives");
    assert!(array(&ok(a.stale_events(JsValue::from_str("u1"))).await).is_empty(), "in flight in a: never stale there");
    assert_eq!(requests(&stub).len(), 1, "sent once");
    finish(&db, &[&a, &b]).await;
}

/// A "tab" that took u1's upload lock of `db` and froze: it holds it forever.
async fn freeze_a_tab_holding_the_lock(db: &str) {
    let hold =
        Function::new_with_args("name", "return new Promise((granted) => navigator.locks.request(name, () => { granted(); return new Promise(() => {}); }));");
    ok(hold.call1(&JsValue::NULL, &JsValue::from_str(&format!("progress-outbox:{db}:u1"))).unwrap().unchecked_into::<Promise>()).await;
}

#[wasm_bindgen_test]
async fn a_frozen_leader_holding_the_lock_is_taken_over() {
    let db = fresh_db("m-frozen");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // A "tab" that took the lock and froze: it holds it forever and its heartbeat is old.
    freeze_a_tab_holding_the_lock(&db).await;
    // takeover = 2 x 50 ms + 2 s + 1 s after a started watching: far from the 500 ms looked at
    // below, so a timer that fires late does not reach it.
    let a = open(&db, r#"{"processingIntervalMs": 50, "requestTimeoutMs": 2000, "backoffMs": [50]}"#).await;
    write_beat(&db, "frozen-tab", Date::now() - 3_600_000.0).await;
    save_for(&a, "u1", 70.0).await;
    a.start(JsValue::from_str("u1")).unwrap();
    sleep(500).await;
    assert!(!a.is_leader(), "not before the takeover time");
    eventually(9000, "the takeover and upload", || async { completed(&a, "u1").await == 1.0 }).await;
    assert!(a.is_leader());
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&a]).await;
}

/// A follower's `processNow()` asks the uploader; an uploader that never answers (frozen with the
/// lock) is taken over meanwhile, and the pass then runs here. Before, the call waited out its
/// whole bound (10 s + requestTimeoutMs) and resolved with an empty report, though this context
/// had uploaded everything in the meantime.
#[wasm_bindgen_test]
async fn process_now_runs_here_when_the_uploader_it_asked_is_taken_over() {
    let db = fresh_db("m-now-takeover");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    freeze_a_tab_holding_the_lock(&db).await;
    // Takeover within 2 x 200 ms + 500 ms + 1 s, well inside processNow()'s 10.5 s bound.
    let a = open(&db, r#"{"processingIntervalMs": 200, "requestTimeoutMs": 500, "backoffMs": [50]}"#).await;
    write_beat(&db, "frozen-tab", Date::now()).await;
    save_for(&a, "u1", 70.0).await;
    a.start(JsValue::from_str("u1")).unwrap();
    sleep(100).await;
    assert!(!a.is_leader());
    let report = ok(a.process_now()).await;
    assert!(a.is_leader(), "a took over while waiting");
    assert_eq!(get(&report, "delegated").as_bool(), Some(false), "the pass ran here: {report:?}");
    // Done when it resolves (by its own pass, or by the one the takeover started just before).
    assert_eq!(completed(&a, "u1").await, 1.0, "{report:?}");
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&a]).await;
}

#[wasm_bindgen_test]
async fn without_web_locks_a_lease_keeps_one_uploader() {
    let restore = hide_web_locks();
    let db = fresh_db("m-lease");
    let (leader, follower) = one_uploader_for(&db, 10).await;
    // The leaseholder leaves: it gives the lease up, the other takes it at its next try.
    leader.close();
    eventually(2000, "the follower to take the lease", || async { follower.is_leader() }).await;
    save_for(&follower, "u1", 80.0).await;
    eventually(2000, "its upload", || async { completed(&follower, "u1").await == 11.0 }).await;
    follower.close();
    restore.call0(&JsValue::NULL).unwrap();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn without_web_locks_an_expired_lease_is_taken_over() {
    let restore = hide_web_locks();
    let db = fresh_db("m-lease-expiry");
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // A request timeout of 2 s: the lease lasts seconds past the 600 ms looked at below.
    let a = open(&db, r#"{"processingIntervalMs": 50, "requestTimeoutMs": 2000, "backoffMs": [50]}"#).await;
    // A leaseholder that crashed a moment ago: its lease is fresh, then expires.
    write_beat(&db, "crashed-tab", Date::now()).await;
    a.start(JsValue::from_str("u1")).unwrap();
    sleep(600).await;
    assert!(!a.is_leader(), "the lease is still valid");
    eventually(9000, "the expired lease to be taken", || async { a.is_leader() }).await;
    a.close();
    restore.call0(&JsValue::NULL).unwrap();
    ok(delete_db(&db)).await;
}

/// Without Web Locks, another context judged a claim stale by its wall-clock stamp alone: with
/// `staleAfterMs` shorter than a request (or a clock jumped ahead), `resetForRetry` there reset an
/// event the live uploader had in flight, to be sent a second time beside it. It must also have
/// seen the claim unchanged for longer than a request can take (here 2 x 10 s + 1 s).
#[wasm_bindgen_test]
async fn without_web_locks_an_event_in_flight_is_never_reset_from_another_context() {
    let restore = hide_web_locks();
    let db = fresh_db("m-lease-inflight");
    let stub = stub_fetch(&json(r#"[{"status": 201, "delayMs": 4000}]"#), &json(r#"{"status": 201}"#));
    let (a, b) = pair(&db, r#"{"staleAfterMs": 200, "requestTimeoutMs": 10000}"#).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(2000, "a leads", || async { a.is_leader() }).await;
    b.start(JsValue::from_str("u1")).unwrap();
    save_for(&a, "u1", 70.0).await;
    eventually(2000, "the upload is in flight", || async { !requests(&stub).is_empty() }).await;
    // b sees the claim once, then again after more than five times staleAfterMs, its request
    // still out: old by its stamp and by b's watch, but not by a request's length.
    let first = array(&ok(b.stale_events(JsValue::from_str("u1"))).await);
    assert!(first.is_empty(), "listed as stale while in flight: {first:?}");
    sleep(1500).await;
    let stale = array(&ok(b.stale_events(JsValue::from_str("u1"))).await);
    assert!(stale.is_empty(), "listed as stale while in flight: {stale:?}");
    let event = events(&b, r#"{"userId": "u1"}"#).await.remove(0);
    assert_eq!(string(&event, "status"), "processing", "its request is still out when the reset is tried");
    let id = string(&event, "id");
    let reset = ok(b.reset_for_retry(js_sys::Array::of1(&JsValue::from_str(&id)).into())).await;
    assert_eq!(reset.as_f64(), Some(0.0), "reset while in flight");
    eventually(6000, "the upload completes", || async { completed(&a, "u1").await == 1.0 }).await;
    sleep(300).await;
    assert_eq!(requests(&stub).len(), 1, "sent once");
    a.close();
    b.close();
    restore.call0(&JsValue::NULL).unwrap();
    ok(delete_db(&db)).await;
}

/// Without Web Locks, a claim left by a context that crashed mid-upload was recovered only by a
/// context that had watched it for `staleAfterMs` itself: an app used in sessions shorter than
/// that never sent the measurement. A claim older than `staleAfterMs` by its stamp is recovered
/// once this context has watched it for a request's length (here 2 x 1 s + 1 s), not 60 s.
#[wasm_bindgen_test]
async fn without_web_locks_an_old_claim_of_a_crashed_context_is_recovered_within_a_request_length() {
    use progress_outbox::domain::config::LogLevel;
    use progress_outbox::domain::retry::RetryPolicy;
    use progress_outbox::platform::Log;
    use progress_outbox::store::Store;
    let restore = hide_web_locks();
    let db = fresh_db("m-lease-crashed");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let a = open(&db, r#"{"processingIntervalMs": 50, "requestTimeoutMs": 1000, "staleAfterMs": 60000, "backoffMs": [50]}"#).await;
    save_for(&a, "u1", 70.0).await;
    let id = string(&events(&a, r#"{"userId": "u1"}"#).await[0], "id");
    // A tab claimed it ten minutes ago (by its stamp), then crashed: its lease has expired too.
    let s = Store::open(&db, 5, Log { level: LogLevel::Off }).await.expect("store opens");
    let ghost = s.take_lead("u1", "crashed-tab", None).await.expect("take_lead").expect("the record was taken");
    assert_eq!(s.claim("u1", &ghost, 10, &[], &|_| false, RetryPolicy::default().longest_wait()).await.unwrap().items.len(), 1);
    s.close();
    let record = ok(raw_get(&db, "events", &JsValue::from_str(&id))).await;
    set(&record, "lastAttemptAt", &JsValue::from_f64(Date::now() - 600_000.0));
    ok(raw_put(&db, "events", &record, &JsValue::UNDEFINED)).await;
    write_beat(&db, "crashed-tab", Date::now() - 600_000.0).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(4000, "a to take the expired lease", || async { a.is_leader() }).await;
    eventually(8000, "the crashed tab's claim to be recovered and uploaded", || async { completed(&a, "u1").await == 1.0 }).await;
    assert_eq!(requests(&stub).len(), 1, "sent once");
    a.close();
    restore.call0(&JsValue::NULL).unwrap();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn on_version_change_is_called_when_another_tab_upgrades() {
    let db = fresh_db("m-versionchange");
    let called = Function::new_no_args("globalThis.__versionChanged = (globalThis.__versionChanged || 0) + 1;");
    let c = config(&db, "{}");
    set(&c, "onVersionChange", &called);
    let outbox = Outbox::open(c).await.unwrap();
    ok(upgrade_elsewhere(&db, 7)).await; // resolves: the newer tab was not blocked
    assert_eq!(get(&js_sys::global(), "__versionChanged").as_f64(), Some(1.0));
    rejects(outbox.stats(JsValue::from_str("u1")), "Error", "VERSION_CHANGED").await;
    ok(delete_db(&db)).await;
}
