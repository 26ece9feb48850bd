//! Storage and API surface: atomic saves, validation, schema upgrades, queries, stats, cleanup.
//! The store tests drive `progress_outbox::store` directly (claims need the uploader record:
//! `take_lead` first); everything else goes through the JS API.

use js_sys::Date;
use progress_outbox::domain::config::LogLevel;
use progress_outbox::domain::entry::{ProgressEntry, SaveInput};
use progress_outbox::domain::event::{EventStatus, Operation, OutboxEvent};
use progress_outbox::domain::metric::Metric;
use progress_outbox::domain::retry::{Decision, RetryPolicy};
use progress_outbox::platform::timer::Deadline;
use progress_outbox::platform::Log;
use progress_outbox::store::queue::{Lead, Outcome, Recorded};
use progress_outbox::store::Store;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const QUIET: Log = Log { level: LogLevel::Off };

fn now() -> i64 {
    Date::now() as i64
}

fn longest_wait() -> u64 {
    RetryPolicy::default().longest_wait()
}

async fn store(db: &str) -> Store {
    Store::open(db, 5, QUIET).await.expect("store opens")
}

/// Makes `owner` the uploader of `user` (claims are fenced by the uploader record).
async fn lead(s: &Store, user: &str, owner: &str) -> Lead {
    s.take_lead(user, owner, None).await.expect("take_lead").expect("the record was taken")
}

fn new_pair(user: &str, kg: f64, priority: i32, at: i64) -> (ProgressEntry, OutboxEvent) {
    let input = SaveInput { metric: Metric::Weight, quantity: kg, user_id: user.into(), date: at, priority };
    let entry = ProgressEntry::new(uuid::Uuid::new_v4().to_string(), &input, at);
    let event = OutboxEvent::new(uuid::Uuid::new_v4().to_string(), Operation::Create, &entry, priority, 5, at);
    (entry, event)
}

fn complete(backend_id: &str) -> Decision {
    Decision::Complete { backend_id: Some(backend_id.into()) }
}

/// A failure to retry at `at`; `counted`: a failed server answer (not a network error).
fn retry(at: i64, wait_ms: u64, message: &str, counted: bool) -> Decision {
    Decision::Retry { at, wait_ms, message: message.into(), counted, sent: true, maybe_stored: true, stepped: true }
}

fn give_up(message: &str) -> Decision {
    Decision::GiveUp { message: message.into(), refused: true, maybe_stored: false }
}

/// Records the result of the first claim of event `id`, decided at `at`.
async fn record(s: &Store, id: &str, decision: Decision, at: i64) {
    let answered = !matches!(decision, Decision::Retry { counted: false, .. });
    let r = s.record(&[Outcome { event_id: id, claim: 1, decision: &decision, answered, at }], None).await.unwrap();
    assert!(matches!(r[0], Recorded::Applied(..)), "result of {id} not applied: {r:?}");
}

async fn count(db: &str, store_name: &str) -> usize {
    array(&ok(raw_get_all(db, store_name)).await).len()
}

async fn events_of(outbox: &progress_outbox::Outbox, user: &str) -> Vec<JsValue> {
    let q = json("{}");
    set(&q, "userId", &JsValue::from_str(user));
    array(&ok(outbox.events(q)).await)
}

#[wasm_bindgen_test]
async fn save_weight_writes_entry_and_event_visible_to_another_connection() {
    let db = fresh_db("save");
    let outbox = open(&db, "{}").await;
    outbox.start(JsValue::from_str("u1")).unwrap_or_else(|e| panic!("{}", message(&e)));
    outbox.stop(); // no processor in this test: only storage
    let before = now();
    let entry = ok(outbox.save_weight(JsValue::from_f64(72.5), json(r#"{"userId": "u1"}"#))).await;
    // Resolved = committed: a separate connection sees both records.
    let entries = array(&ok(raw_get_all(&db, "entries")).await);
    let events = array(&ok(raw_get_all(&db, "events")).await);
    assert_eq!((entries.len(), events.len()), (1, 1));

    assert_eq!(string(&entry, "userId"), "u1");
    assert_eq!(string(&entry, "type"), "weight");
    assert_eq!(string(&entry, "unit"), "kg");
    assert_eq!(num(&entry, "quantity"), 72.5);
    assert!(get(&entry, "backendId").is_null(), "backendId is null until acknowledged");
    assert!(num(&entry, "date") >= before as f64 && num(&entry, "createdAt") >= before as f64);
    assert_eq!(num(&entry, "createdAt"), num(&entry, "updatedAt"));
    assert_eq!(string(&entries[0], "id"), string(&entry, "id"));

    let listed = events_of(&outbox, "u1").await;
    assert_eq!(listed.len(), 1);
    let ev = &listed[0];
    assert_eq!(string(ev, "id"), string(&events[0], "id"));
    assert_eq!(string(ev, "eventType"), "progressEntry");
    assert_eq!(string(ev, "operation"), "create");
    assert_eq!(string(ev, "entityId"), string(&entry, "id"));
    assert_eq!(string(ev, "userId"), "u1");
    assert_eq!(string(ev, "status"), "pending");
    let meta = get(ev, "metadata");
    assert_eq!(
        (string(&meta, "type"), num(&meta, "quantity"), string(&meta, "unit"), num(&meta, "date")),
        ("weight".into(), 72.5, "kg".into(), num(&entry, "date"))
    );
    assert_eq!(get(ev, "isNewRecord").as_bool(), Some(true));
    assert_eq!((num(ev, "attemptCount"), num(ev, "requestCount"), num(ev, "maxAttempts"), num(ev, "priority")), (0.0, 0.0, 5.0, 0.0));
    for nullable in ["lastAttemptAt", "nextAttemptAt", "completedAt", "errorMessage"] {
        assert!(get(ev, nullable).is_null(), "{nullable} should be null");
    }
    assert_eq!(get(ev, "gaveUp").as_bool(), Some(false));
    assert_eq!(get(ev, "quarantined").as_bool(), Some(false));
    // Index fields and queue bookkeeping stay internal.
    for internal in ["sk", "rdy", "due", "done", "seq", "waiting", "blocks", "claims", "claimedBy", "tries", "waitMs", "refused"] {
        assert!(get(ev, internal).is_undefined(), "{internal} leaked into the API object");
    }
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn save_uses_the_started_user_and_options() {
    let db = fresh_db("save-opts");
    let outbox = open(&db, "{}").await;
    // start() records the user (and starts a processor: its uploads do not matter here).
    stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    outbox.start(JsValue::from_str("u1")).unwrap();
    let a = ok(outbox.save_weight(JsValue::from_f64(70.0), JsValue::UNDEFINED)).await;
    assert_eq!(string(&a, "userId"), "u1");
    let date = Date::new(&JsValue::from_str("2026-11-01T00:00:00Z"));
    let opts = json(r#"{"userId": "u2", "priority": 7}"#);
    set(&opts, "date", &date);
    let b = ok(outbox.save_weight(JsValue::from_f64(80.0), opts)).await;
    assert_eq!(string(&b, "userId"), "u2");
    assert_eq!(num(&b, "date"), date.get_time());
    let ev = &events_of(&outbox, "u2").await[0];
    assert_eq!(num(ev, "priority"), 7.0);
    // milliseconds work too
    let c = ok(outbox.save_weight(JsValue::from_f64(81.0), json(r#"{"date": 1700000000000}"#))).await;
    assert_eq!(num(&c, "date"), 1_700_000_000_000.0);
    assert_eq!(outbox.current_user().as_string().as_deref(), Some("u1"));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn entry_and_event_are_written_together_or_not_at_all() {
    let db = fresh_db("atomic");
    let s = store(&db).await;
    let (e1, ev1) = new_pair("u1", 70.0, 0, now());
    s.save(&e1, &ev1, Deadline::from_now()).await.unwrap();

    // The event write fails (its id collides) after the entry was written: the entry must not stay.
    let (e2, mut ev2) = new_pair("u1", 71.0, 0, now());
    ev2.id = ev1.id.clone();
    let err = s.save(&e2, &ev2, Deadline::from_now()).await.unwrap_err();
    assert!(err.to_string().contains("ConstraintError"), "{err}");
    assert_eq!(count(&db, "entries").await, 1, "entry of the failed save was committed");

    // The entry write fails (its id collides): its event must not be stored either.
    let (mut e3, ev3) = new_pair("u1", 72.0, 0, now());
    e3.id = e1.id.clone();
    let err = s.save(&e3, &ev3, Deadline::from_now()).await.unwrap_err();
    assert!(err.to_string().contains("ConstraintError"), "{err}");
    assert_eq!(count(&db, "entries").await, 1);
    assert_eq!(count(&db, "events").await, 1, "event of the failed save was committed");
    // `add`, never `put`: the first entry is untouched.
    let kept = ok(raw_get(&db, "entries", &JsValue::from_str(&e1.id))).await;
    assert_eq!(num(&kept, "quantity"), 70.0);
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn every_bad_input_is_rejected_with_a_js_error_and_nothing_is_stored() {
    let db = fresh_db("bad-input");
    let outbox = open(&db, "{}").await;
    // No current user and no userId.
    let msg = rejects(outbox.save_weight(JsValue::from_f64(70.0), JsValue::UNDEFINED), "TypeError", "NO_USER").await;
    assert!(msg.contains("start(userId)"), "{msg}");

    let u = r#"{"userId": "u1"}"#;
    for (kg, class, code) in [
        (JsValue::from_f64(f64::NAN), "RangeError", "OUT_OF_RANGE"),
        (JsValue::from_f64(f64::INFINITY), "RangeError", "OUT_OF_RANGE"),
        (JsValue::from_f64(0.0), "RangeError", "OUT_OF_RANGE"),
        (JsValue::from_f64(-70.0), "RangeError", "OUT_OF_RANGE"),
        (JsValue::from_f64(635.0001), "RangeError", "OUT_OF_RANGE"),
        (JsValue::from_str("72.5"), "TypeError", "INVALID_TYPE"),
        (JsValue::NULL, "TypeError", "INVALID_TYPE"),
        (JsValue::UNDEFINED, "TypeError", "INVALID_TYPE"),
        (json(r#"{"kg": 70}"#), "TypeError", "INVALID_TYPE"),
        (JsValue::from_bool(true), "TypeError", "INVALID_TYPE"),
    ] {
        let msg = rejects(outbox.save_weight(kg.clone(), json(u)), class, code).await;
        assert!(msg.starts_with("saveWeight(kg)"), "{kg:?}: {msg}");
    }
    let future = Date::now() + 24.0 * 3_600_000.0 + 60_000.0;
    for (opts, class, code) in [
        (r#"{"userId": ""}"#.to_string(), "RangeError", "OUT_OF_RANGE"),
        (format!(r#"{{"userId": "{}"}}"#, "x".repeat(257)), "RangeError", "OUT_OF_RANGE"),
        (r#"{"userId": 42}"#.into(), "TypeError", "INVALID_TYPE"),
        (r#"{"userId": "u1", "date": -2208988800001}"#.into(), "RangeError", "OUT_OF_RANGE"),
        (format!(r#"{{"userId": "u1", "date": {future}}}"#), "RangeError", "OUT_OF_RANGE"),
        (r#"{"userId": "u1", "date": "2026-11-01"}"#.into(), "TypeError", "INVALID_TYPE"),
        (r#"{"userId": "u1", "priority": 1001}"#.into(), "RangeError", "OUT_OF_RANGE"),
        (r#"{"userId": "u1", "priority": 0.5}"#.into(), "RangeError", "OUT_OF_RANGE"),
        (r#"{"userId": "u1", "priority": "high"}"#.into(), "TypeError", "INVALID_TYPE"),
        (r#"{"userID": "u1"}"#.into(), "TypeError", "INVALID_TYPE"),
    ] {
        rejects(outbox.save_weight(JsValue::from_f64(70.0), json(&opts)), class, code).await;
    }
    // An invalid Date, and a Date passed where the options object belongs.
    let opts = json(u);
    set(&opts, "date", &Date::new(&JsValue::from_str("not a date")));
    rejects(outbox.save_weight(JsValue::from_f64(70.0), opts), "RangeError", "OUT_OF_RANGE").await;
    rejects(outbox.save_weight(JsValue::from_f64(70.0), Date::new_0().into()), "TypeError", "INVALID_TYPE").await;
    rejects(outbox.save_weight(JsValue::from_f64(70.0), JsValue::from_str("u1")), "TypeError", "INVALID_TYPE").await;

    assert_eq!(count(&db, "entries").await, 0, "a rejected save stored an entry");
    assert_eq!(count(&db, "events").await, 0, "a rejected save stored an event");

    // Boundaries that must pass.
    ok(outbox.save_weight(JsValue::from_f64(635.0), json(u))).await;
    let at_limit = format!(r#"{{"userId": "u1", "date": {}}}"#, Date::now() + 24.0 * 3_600_000.0 - 1000.0);
    ok(outbox.save_weight(JsValue::from_f64(0.1), json(&at_limit))).await;
    ok(outbox.save_weight(JsValue::from_f64(50.0), json(r#"{"userId": "u1", "date": -2208988800000, "priority": -1000}"#))).await;
    assert_eq!(count(&db, "entries").await, 3);

    // Other methods.
    throws(outbox.start(JsValue::from_f64(1.0)), "TypeError", "INVALID_TYPE");
    throws(outbox.start(JsValue::from_str("")), "RangeError", "OUT_OF_RANGE");
    throws(outbox.subscribe(JsValue::from_str("not a function")), "TypeError", "INVALID_TYPE");
    rejects(outbox.stats(JsValue::UNDEFINED), "TypeError", "NO_USER").await;
    rejects(outbox.stats(JsValue::from_f64(3.0)), "TypeError", "INVALID_TYPE").await;
    rejects(outbox.entries(JsValue::UNDEFINED), "TypeError", "NO_USER").await;
    rejects(outbox.stale_events(JsValue::UNDEFINED), "TypeError", "NO_USER").await;
    rejects(outbox.events(json(r#"{"userId": "u1", "status": "gaveUp"}"#)), "RangeError", "OUT_OF_RANGE").await;
    rejects(outbox.events(json(r#"{"userId": "u1", "limit": 0}"#)), "RangeError", "OUT_OF_RANGE").await;
    rejects(outbox.events(json(r#"{"userId": "u1", "state": "failed"}"#)), "TypeError", "INVALID_TYPE").await;
    rejects(outbox.reset_for_retry(JsValue::from_str("id")), "TypeError", "INVALID_TYPE").await;
    rejects(outbox.reset_for_retry(json(r#"["a", 3]"#)), "TypeError", "INVALID_TYPE").await;
    let msg = rejects(outbox.reset_for_retry(json(r#"["no-such-event"]"#)), "RangeError", "UNKNOWN_EVENT").await;
    assert!(msg.contains("no-such-event"), "{msg}");
    assert_eq!(count(&db, "entries").await, 3);
    assert_eq!(count(&db, "events").await, 3);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn open_validates_its_options() {
    for (config, class, code) in [
        (JsValue::UNDEFINED, "TypeError", "INVALID_TYPE"),
        (json(r#"{"dbName": "x"}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"endpoint": "/api", "batchSize": 0}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"endpoint": "/api", "backoffMs": [1000, -1]}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"endpoint": "/api", "log": "loud"}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"endpoint": "/api", "token": 42}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"endpoint": "/api", "batchsize": 5}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"endpoint": "/api", "maxConcurrent": "3"}"#), "TypeError", "INVALID_TYPE"),
    ] {
        match progress_outbox::Outbox::open(config.clone()).await {
            Ok(_) => panic!("opened with {config:?}"),
            Err(e) => {
                assert!(is_instance(&e, class), "{config:?}: {e:?}");
                assert_eq!(get(&e, "code").as_string().as_deref(), Some(code));
                assert!(progress_outbox::is_outbox_error(e.clone()), "isOutboxError: {e:?}");
            }
        }
    }
    // isOutboxError is true only for a real Error carrying a code of ours.
    assert!(!progress_outbox::is_outbox_error(json(r#"{"code": "CLOSED", "message": "x"}"#)), "a plain object shaped like one");
    let other = js_sys::Error::new("x");
    set(&other, "code", &JsValue::from_str("ENOENT"));
    assert!(!progress_outbox::is_outbox_error(other.into()), "an Error with another code");
    assert!(!progress_outbox::is_outbox_error(JsValue::from_str("CLOSED")));
    // A rejected token is never echoed in the error (it may be a real secret of the wrong type).
    for bad in [
        r#"{"endpoint": "/api", "token": ["secret-123"]}"#,
        r#"{"endpoint": "/api", "token": {"value": "secret-123"}}"#,
        r#"{"endpoint": "/api", "token": ""}"#,
    ] {
        let e = progress_outbox::Outbox::open(json(bad)).await.err().expect("a bad token is refused");
        assert_eq!(get(&e, "code").as_string().as_deref(), Some("INVALID_TYPE"));
        assert!(!message(&e).contains("secret-123"), "{}", message(&e));
    }
}

#[wasm_bindgen_test]
async fn upgrade_from_v1_keeps_entries_and_queues_unsynced_ones() {
    upgrade_from(1).await;
}

#[wasm_bindgen_test]
async fn upgrade_from_v2_keeps_entries_and_queues_unsynced_ones() {
    upgrade_from(2).await;
}

async fn upgrade_from(version: u32) {
    let db = fresh_db(&format!("upgrade-v{version}"));
    let entries = json(
        r#"[
        {"id": "old-1", "userId": "u1", "type": "weight", "quantity": 80.5, "unit": "kg", "date": 1600000000000, "backendId": null, "createdAt": 1600000000000, "updatedAt": 1600000000000},
        {"id": "old-2", "userId": "u1", "type": "weight", "quantity": 79.0, "unit": "kg", "date": 1600086400000, "backendId": "srv-7", "createdAt": 1600086400000, "updatedAt": 1600086400000},
        {"id": "old-3", "userId": "u2", "type": "weight", "quantity": 60.0, "unit": "kg", "date": 1600172800000, "backendId": null, "createdAt": 1600172800000, "updatedAt": 1600172800000},
        {"id": "odd-4", "note": "written by something else, not an entry"}
    ]"#,
    );
    ok(create_legacy_db(&db, version, &entries)).await;
    let outbox = open(&db, "{}").await;
    assert_eq!(ok(raw_version(&db)).await.as_f64(), Some(4.0));
    // Every entry kept, untouched; the record that is not an entry is kept aside, as it was
    // (quarantined: kept, counted, never in the way).
    let raw = array(&ok(raw_get_all(&db, "entries")).await);
    let mut ids: Vec<String> = raw.iter().map(|e| string(e, "id")).collect();
    ids.sort();
    assert_eq!(ids, ["old-1", "old-2", "old-3"]);
    let old1 = raw.iter().find(|e| string(e, "id") == "old-1").unwrap();
    assert_eq!((num(old1, "quantity"), num(old1, "date"), num(old1, "createdAt")), (80.5, 1_600_000_000_000.0, 1_600_000_000_000.0));
    let kept = array(&ok(raw_get_all(&db, "quarantine")).await);
    assert_eq!(kept.len(), 1, "the odd record is kept aside");
    let record = get(&kept[0], "record");
    assert_eq!((string(&record, "id"), string(&record, "note")), ("odd-4".into(), "written by something else, not an entry".into()));
    assert_eq!(num(&stats(&outbox, "u1").await, "quarantined"), 1.0, "a record naming no user is counted for every user");

    let u1 = array(&ok(outbox.entries(JsValue::from_str("u1"))).await);
    assert_eq!(u1.iter().map(|e| string(e, "id")).collect::<Vec<_>>(), ["old-2", "old-1"], "newest first");
    assert_eq!(string(&u1[0], "backendId"), "srv-7");
    // Entries without a backend id got a pending create; the synced one did not.
    let ev1 = events_of(&outbox, "u1").await;
    assert_eq!(ev1.len(), 1);
    assert_eq!((string(&ev1[0], "entityId"), string(&ev1[0], "status")), ("old-1".into(), "pending".into()));
    assert_eq!(string(&ev1[0], "operation"), "create");
    assert_eq!(num(&ev1[0], "createdAt"), 1_600_000_000_000.0);
    assert_eq!(num(&get(&ev1[0], "metadata"), "quantity"), 80.5);
    let ev2 = events_of(&outbox, "u2").await;
    assert_eq!(string(&ev2[0], "entityId"), "old-3");
    assert_eq!(num(&stats(&outbox, "u1").await, "pending"), 1.0);
    // Old entries can be edited like new ones (the upgrade gave them what v4 needs).
    let edited = ok(outbox.update(JsValue::from_str("old-1"), json(r#"{"quantity": 80.0}"#))).await;
    assert_eq!(num(&edited, "quantity"), 80.0);
    let ev1 = events_of(&outbox, "u1").await;
    assert_eq!(ev1.len(), 1, "the edit folds into the never-sent create");
    assert_eq!(num(&get(&ev1[0], "metadata"), "quantity"), 80.0);
    outbox.close();
    // Reopening an up-to-date database changes nothing.
    let outbox = open(&db, "{}").await;
    assert_eq!(events_of(&outbox, "u1").await.len(), 1);
    assert_eq!(count(&db, "entries").await, 3);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_database_from_a_newer_version_is_refused_not_touched() {
    let db = fresh_db("newer");
    ok(create_db_at_version(&db, 9)).await;
    match progress_outbox::Outbox::open(config(&db, "{}")).await {
        Ok(_) => panic!("opened a newer schema"),
        Err(e) => {
            assert_eq!(get(&e, "code").as_string().as_deref(), Some("NEWER_SCHEMA"));
            assert!(message(&e).contains('9'), "{}", message(&e));
        }
    }
    assert_eq!(ok(raw_version(&db)).await.as_f64(), Some(9.0));
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn claim_order_is_priority_desc_then_oldest_first_and_per_user() {
    let db = fresh_db("order");
    let s = store(&db).await;
    let t = now() - 10_000;
    let mut ids = Vec::new();
    for (i, (prio, user)) in [(0, "u1"), (5, "u1"), (0, "u2"), (5, "u1"), (-3, "u1"), (0, "u1")].iter().enumerate() {
        let (e, ev) = new_pair(user, 70.0 + i as f64, *prio, t + i as i64);
        s.save(&e, &ev, Deadline::from_now()).await.unwrap();
        ids.push(ev.id);
    }
    let me = lead(&s, "u1", "me").await;
    let first = s.claim("u1", &me, 3, &[], &|_| false, longest_wait()).await.unwrap();
    let got: Vec<&str> = first.items.iter().map(|c| c.event.id.as_str()).collect();
    assert_eq!(got, [ids[1].as_str(), ids[3].as_str(), ids[0].as_str()]);
    for c in &first.items {
        let e = &c.event;
        assert_eq!((e.status, e.request_count, e.attempt_count, e.claimed_by.as_deref()), (EventStatus::Processing, 1, 0, Some("me")));
        assert!(c.backend_id.is_none(), "a create has no backend id yet");
    }
    let second = s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap();
    let got: Vec<&str> = second.items.iter().map(|c| c.event.id.as_str()).collect();
    assert_eq!(got, [ids[5].as_str(), ids[4].as_str()], "u2's event is not claimed for u1");
    assert!(s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap().items.is_empty(), "processing events are not claimed twice");

    // Fenced: once another context took the uploads over, the old lead claims nothing.
    let (e, ev) = new_pair("u1", 80.0, 0, now());
    s.save(&e, &ev, Deadline::from_now()).await.unwrap();
    let other = lead(&s, "u1", "other").await;
    assert!(other.gen > me.gen);
    let fenced = s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap();
    assert!(fenced.fenced == Some(progress_outbox::store::lease::Renewal::TakenOver) && fenced.items.is_empty());
    assert_eq!(s.claim("u1", &other, 10, &[], &|_| false, longest_wait()).await.unwrap().items.len(), 1);
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn due_retries_rejoin_the_queue_and_future_ones_wait() {
    let db = fresh_db("retry-due");
    let s = store(&db).await;
    let t = now();
    let mut ids = Vec::new();
    for i in 0..4 {
        let (e, ev) = new_pair("u1", 70.0 + i as f64, 0, t - 5000 + i);
        s.save(&e, &ev, Deadline::from_now()).await.unwrap();
        ids.push(ev.id);
    }
    let me = lead(&s, "u1", "me").await;
    assert_eq!(s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap().items.len(), 4);
    // 0: due already on the wall clock; 1 and 2: a minute ahead; 3: further ahead than any
    // wait allows (the device clock was set back after it was written).
    record(&s, &ids[0], retry(t - 1, 1_000, "HTTP 503", true), t - 1_001).await;
    record(&s, &ids[1], retry(t + 60_000, 60_000, "HTTP 503", true), t).await;
    record(&s, &ids[2], retry(t + 60_000, 60_000, "network error", false), t).await;
    record(&s, &ids[3], retry(t + longest_wait() as i64 + 60_000, 60_000, "HTTP 503", true), t).await;

    let c = s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap();
    let mut got: Vec<&str> = c.items.iter().map(|c| c.event.id.as_str()).collect();
    got.sort();
    let mut want = [ids[0].as_str(), ids[3].as_str()];
    want.sort();
    assert_eq!((c.promoted.len(), got), (2, want.to_vec()), "the due one and the one from a clock set back");
    let e0 = c.items.iter().find(|c| c.event.id == ids[0]).unwrap();
    assert_eq!((e0.event.attempt_count, e0.event.request_count), (1, 2), "one failed answer, a second request");

    // Not due yet on the wall clock, but due by this context's monotonic schedule: named in `due`.
    let c = s.claim("u1", &me, 10, &[ids[2].clone()], &|_| false, longest_wait()).await.unwrap();
    assert_eq!((c.promoted.len(), c.items.len()), (1, 1));
    assert_eq!(c.items[0].event.id, ids[2]);
    assert_eq!((c.items[0].event.attempt_count, c.items[0].event.request_count), (0, 2), "a network error is not a failed answer");
    assert!(s.claim("u1", &me, 10, &[], &|_| false, longest_wait()).await.unwrap().items.is_empty(), "the last one waits");
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn stats_events_stale_events_and_reset_for_retry() {
    let db = fresh_db("queries");
    let outbox = open(&db, r#"{"staleAfterMs": 60000}"#).await;
    let s = store(&db).await;
    let t = now();
    let mut ids = Vec::new();
    for i in 0..6 {
        let (e, ev) = new_pair("u1", 70.0 + i as f64, 0, t - 100_000 + i);
        s.save(&e, &ev, Deadline::from_now()).await.unwrap();
        ids.push(ev.id);
    }
    let (e, ev) = new_pair("u2", 60.0, 0, t);
    s.save(&e, &ev, Deadline::from_now()).await.unwrap();

    // A tab that is gone ("ghost": no liveness lock held) claimed 5 of u1's 6; 0..=3 got results.
    let ghost = lead(&s, "u1", "ghost").await;
    assert_eq!(s.claim("u1", &ghost, 5, &[], &|_| false, longest_wait()).await.unwrap().items.len(), 5);
    record(&s, &ids[0], complete("b0"), t - 80_000).await;
    record(&s, &ids[1], retry(t + 3_600_000, 3_600_000, "HTTP 503", true), t - 80_000).await;
    record(&s, &ids[2], give_up("HTTP 422: nope"), t - 80_000).await;
    record(&s, &ids[3], retry(t + 3_600_000, 3_600_000, "network error", false), t - 70_000).await;

    let st = stats(&outbox, "u1").await;
    let counts: Vec<f64> = ["pending", "processing", "failed", "completed", "gaveUp", "retrying", "quarantined"].iter().map(|k| num(&st, k)).collect();
    assert_eq!(counts, [1.0, 1.0, 3.0, 1.0, 1.0, 2.0, 0.0]);
    assert_eq!(num(&st, "lastSyncAt"), (t - 80_000) as f64);
    assert_eq!(string(&st, "lastError"), "network error");
    assert_eq!(num(&st, "oldestPendingAt"), (t - 100_000 + 5) as f64);
    assert_eq!(num(&st, "syncLatencyMs"), ((t - 80_000) - (t - 100_000)) as f64);
    // Failed answers since the last success: the 503 and the 422 (the network error is no answer).
    assert_eq!(num(&st, "failedInARow"), 2.0);
    assert_eq!(string(&st, "userId"), "u1");
    for key in ["health", "persisted", "storage", "batchEvents"] {
        assert!(!get(&st, key).is_undefined(), "stats().{key} is missing");
    }
    assert_eq!(num(&stats(&outbox, "u2").await, "pending"), 1.0);

    // The entry of the completed event carries its backend id.
    let entries = array(&ok(outbox.entries(JsValue::from_str("u1"))).await);
    let synced: Vec<String> = entries.iter().filter(|e| !get(e, "backendId").is_null()).map(|e| string(e, "backendId")).collect();
    assert_eq!(synced, ["b0"]);

    let failed = array(&ok(outbox.events(json(r#"{"userId": "u1", "status": "failed"}"#))).await);
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().any(|e| string(e, "id") == ids[2] && get(e, "gaveUp").as_bool() == Some(true) && get(e, "nextAttemptAt").is_null()));
    assert!(failed.iter().any(|e| string(e, "id") == ids[1] && get(e, "gaveUp").as_bool() == Some(false) && num(e, "nextAttemptAt") > t as f64));
    assert!(failed.iter().any(|e| string(e, "id") == ids[3] && num(e, "attemptCount") == 0.0 && num(e, "requestCount") == 1.0), "a network error never counts");
    let limited = array(&ok(outbox.events(json(r#"{"userId": "u1", "limit": 2}"#))).await);
    assert_eq!(limited.len(), 2);
    let all = events_of(&outbox, "u1").await;
    assert_eq!(all.len(), 6);
    let created: Vec<f64> = all.iter().map(|e| num(e, "createdAt")).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");

    // Its claimer is gone (no liveness lock): stale at once, whatever staleAfterMs says.
    let stale = array(&ok(outbox.stale_events(JsValue::from_str("u1"))).await);
    assert_eq!(stale.iter().map(|e| string(e, "id")).collect::<Vec<_>>(), [ids[4].clone()]);

    // resetForRetry: failed (retrying and gave up) and stale -> pending, attempts 0; others untouched.
    let reset_ids = js_sys::Array::new();
    for id in [&ids[1], &ids[2], &ids[4], &ids[0], &ids[5]] {
        reset_ids.push(&JsValue::from_str(id));
    }
    let n = ok(outbox.reset_for_retry(reset_ids.into())).await;
    assert_eq!(n.as_f64(), Some(3.0), "completed and pending ones are not reset");
    let st = stats(&outbox, "u1").await;
    assert_eq!((num(&st, "pending"), num(&st, "failed"), num(&st, "processing"), num(&st, "completed")), (4.0, 1.0, 0.0, 1.0));
    for id in [&ids[1], &ids[2], &ids[4]] {
        let e = s.event(id).await.unwrap().unwrap();
        assert_eq!((e.status, e.attempt_count, e.next_attempt_at, e.error_message), (EventStatus::Pending, 0, None, None));
    }
    assert_eq!(s.event(&ids[0]).await.unwrap().unwrap().status, EventStatus::Completed);
    outbox.close();
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn cleanup_deletes_only_completed_events_past_retention() {
    let db = fresh_db("cleanup");
    let s = store(&db).await;
    let t = now();
    let day = 86_400_000;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (e, ev) = new_pair(if i == 3 { "u2" } else { "u1" }, 70.0, 0, t - 10 * day);
        s.save(&e, &ev, Deadline::from_now()).await.unwrap();
        ids.push(ev.id);
    }
    let l1 = lead(&s, "u1", "me").await;
    let l2 = lead(&s, "u2", "me").await;
    s.claim("u1", &l1, 10, &[], &|_| false, longest_wait()).await.unwrap();
    s.claim("u2", &l2, 10, &[], &|_| false, longest_wait()).await.unwrap();
    record(&s, &ids[0], complete("a"), t - 8 * day).await; // old: goes
    record(&s, &ids[1], complete("b"), t - day).await; // recent: stays
    record(&s, &ids[2], give_up("HTTP 400"), t - 9 * day).await; // failed: stays
    record(&s, &ids[3], complete("d"), t - 9 * day).await; // u2, old: goes
    let removed = s.cleanup(t, 7 * day as u64).await.unwrap();
    assert_eq!(removed, 2);
    assert!(s.event(&ids[0]).await.unwrap().is_none());
    assert!(s.event(&ids[3]).await.unwrap().is_none());
    assert!(s.event(&ids[1]).await.unwrap().is_some());
    assert!(s.event(&ids[2]).await.unwrap().is_some());
    assert_eq!(count(&db, "entries").await, 4, "entries are health data: never cleaned up");
    assert_eq!(s.stats("u1").await.unwrap().completed, 1, "completed counter follows cleanup");
    assert_eq!(s.stats("u2").await.unwrap().completed, 0);
    assert_eq!(s.cleanup(t, 7 * day as u64).await.unwrap(), 0);
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn cleanup_works_through_batches_larger_than_one_transaction() {
    let db = fresh_db("cleanup-many");
    let s = store(&db).await;
    let t = now() - 1_000_000;
    for _ in 0..1_100 {
        let (e, ev) = new_pair("u1", 70.0, 0, t);
        s.save(&e, &ev, Deadline::from_now()).await.unwrap();
    }
    let me = lead(&s, "u1", "me").await;
    let done = complete("x");
    loop {
        let c = s.claim("u1", &me, 1000, &[], &|_| false, longest_wait()).await.unwrap();
        if c.items.is_empty() {
            break;
        }
        let results: Vec<Outcome<'_>> =
            c.items.iter().map(|c| Outcome { event_id: &c.event.id, claim: c.event.claims, decision: &done, answered: true, at: t }).collect();
        s.record(&results, Some(&me)).await.unwrap();
    }
    assert_eq!(s.stats("u1").await.unwrap().completed, 1_100);
    assert_eq!(s.cleanup(now(), 1000).await.unwrap(), 1_100);
    assert_eq!(s.stats("u1").await.unwrap().completed, 0);
    assert_eq!(count(&db, "events").await, 0);
    s.close();
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn an_upgrade_from_another_tab_closes_this_connection_and_says_reload() {
    let db = fresh_db("versionchange");
    let outbox = open(&db, "{}").await;
    ok(outbox.save_weight(JsValue::from_f64(70.0), json(r#"{"userId": "u1"}"#))).await;
    // A newer app version in another tab upgrades: it must not be blocked by us.
    ok(upgrade_elsewhere(&db, 5)).await;
    assert_eq!(ok(raw_version(&db)).await.as_f64(), Some(5.0));
    let msg = rejects(outbox.save_weight(JsValue::from_f64(71.0), json(r#"{"userId": "u1"}"#)), "Error", "VERSION_CHANGED").await;
    assert!(msg.contains("reload"), "{msg}");
    rejects(outbox.stats(JsValue::from_str("u1")), "Error", "VERSION_CHANGED").await;
    throws(outbox.start(JsValue::from_str("u1")), "Error", "VERSION_CHANGED");
    assert_eq!(count(&db, "entries").await, 1, "the refused save stored nothing");
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn closed_outbox_rejects_calls() {
    let db = fresh_db("closed");
    let outbox = open(&db, "{}").await;
    outbox.close();
    rejects(outbox.save_weight(JsValue::from_f64(70.0), json(r#"{"userId": "u1"}"#)), "Error", "CLOSED").await;
    rejects(outbox.process_now(), "Error", "CLOSED").await;
    rejects(outbox.stats(JsValue::from_str("u1")), "Error", "CLOSED").await;
    throws(outbox.start(JsValue::from_str("u1")), "Error", "CLOSED");
    assert_eq!(count(&db, "entries").await, 0);
    ok(delete_db(&db)).await;
}

#[wasm_bindgen_test]
async fn a_closed_outbox_never_recreates_a_database_the_app_deleted() {
    // Logout that wipes local data: close(), then delete the database at once. What close() still
    // finishes in the background (the upload in flight, handing the uploads over) must not
    // create it again.
    let db = fresh_db("close-delete");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201, "delayMs": 300}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 50}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    ok(outbox.save_weight(JsValue::from_f64(70.0), JsValue::UNDEFINED)).await;
    eventually(2000, "the upload to be in flight", || async { requests(&stub).len() == 1 }).await;
    outbox.close();
    ok(delete_db(&db)).await;
    wait_closed(&db).await;
    assert_eq!(get(&stub, "inFlight").as_f64(), Some(0.0), "the upload in flight had its answer");
    // Opening without a version creates an absent database at version 1.
    assert_eq!(ok(raw_version(&db)).await.as_f64(), Some(1.0), "the deleted database was created again");
    ok(delete_db(&db)).await;
}
