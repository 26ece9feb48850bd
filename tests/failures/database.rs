//! Fault 3: a database the browser wipes or closes under a started outbox. Saves issued then
//! never settled, the leader kept leading while every pass failed, its wiped heartbeat meant no
//! follower took over, and aborted transactions threw "closure invoked recursively or after being
//! dropped" into the page. Now: reopened on the next call, every call settles, the uploads go on.
//! And another tab's long transaction: `resetForRetry` settled only when it ended (30 s), and
//! `processNow` after 41 s; now each gives up at its bound.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const CFG: &str = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 1000, "backoffMs": [100], "maxAttempts": 5, "log": "warn"}"#;

async fn completed(outbox: &progress_outbox::Outbox, user: &str, entry_id: &str) -> bool {
    let all = events(outbox, &format!(r#"{{"userId": "{user}"}}"#)).await;
    all.iter().any(|e| opt_string(e, "entityId").as_deref() == Some(entry_id) && opt_string(e, "status").as_deref() == Some("completed"))
}

/// Errors that reached the page since `from` (window.onerror, unhandledrejection).
fn page_errors(from: u32) -> Vec<String> {
    page_errors_since(from).iter().filter_map(|e| e.as_string()).collect()
}

#[wasm_bindgen_test]
async fn f3_a_database_deleted_under_a_started_outbox_is_recreated() {
    let db = fresh_db("wiped");
    let errors_before = page_error_count();
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, CFG).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let first = save(&outbox, 70.0).await;
    let first_id = string(&first, "id");
    eventually(5_000, "the first upload", || async { completed(&outbox, "u1", &first_id).await }).await;

    // Site data cleared (or this app's other code deleting it): the outbox must let it go.
    let console = capture_console();
    let wiped = resolves(10_000, "deleteDatabase", wipe_db(&db, 5_000)).await;
    assert_eq!(wiped.as_string().as_deref(), Some("success"), "the open outbox blocked the delete");

    // A save issued right after settles: resolved (on a fresh database) or rejected with a clear error.
    let during = settles(10_000, "a save right after the wipe", outbox.save_weight(JsValue::from_f64(71.0), JsValue::UNDEFINED)).await;
    if let Err(e) = &during {
        assert!(is_instance(e, "Error") && get(e, "code").is_string(), "a rejection must be an Error with a code: {e:?}");
    }
    // Later calls work, and what they save is uploaded.
    let later = save(&outbox, 72.0).await;
    let later_id = string(&later, "id");
    let stats = stats(&outbox, "u1").await;
    assert!(num(&stats, "pending") + num(&stats, "processing") + num(&stats, "completed") >= 1.0, "{stats:?}");
    let _ = process_now(&outbox, 10_000).await;
    eventually(8_000, "the save after the wipe uploads", || async { completed(&outbox, "u1", &later_id).await }).await;
    if let Ok(entry) = &during {
        let id = string(entry, "id");
        eventually(8_000, "the save during the wipe uploads", || async { completed(&outbox, "u1", &id).await }).await;
    }
    assert!(keys(&stub).len() >= 2, "the upload after the wipe reached the server");
    // The log says what happened, not that another context (there is none) took over.
    eventually(8_000, "the log line for the wiped uploader record", || {
        let found = console_lines(&console).iter().any(|l| l.contains("uploader record of user u1 is gone"));
        async move { found }
    })
    .await;
    let seen = console_lines(&console);
    restore_console(&console);
    assert!(!seen.iter().any(|l| l.contains("another context took over")), "{seen:#?}");
    let stores = array(&ok(raw_stores(&db)).await);
    assert!(stores.iter().any(|s| s.as_string().as_deref() == Some("events")), "the database was recreated with its schema: {stores:?}");

    let errors = page_errors(errors_before);
    assert!(errors.is_empty(), "errors reached the page: {errors:?}");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f3_after_a_wipe_two_outboxes_keep_uploading() {
    let db = fresh_db("wiped-two");
    let errors_before = page_error_count();
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let a = open(&db, CFG).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the first outbox leads", || async { a.is_leader() }).await;
    let b = open(&db, CFG).await;
    b.start(JsValue::from_str("u1")).unwrap();
    let first = save(&b, 70.0).await;
    let first_id = string(&first, "id");
    eventually(5_000, "the first upload", || async { completed(&b, "u1", &first_id).await }).await;

    let wiped = resolves(10_000, "deleteDatabase", wipe_db(&db, 5_000)).await;
    assert_eq!(wiped.as_string().as_deref(), Some("success"), "an open outbox blocked the delete");

    // Saved in the follower after the wipe: whoever leads now must upload it (the leader's
    // heartbeat went with the database).
    let _ = settles(10_000, "a save right after the wipe", b.save_weight(JsValue::from_f64(71.0), JsValue::UNDEFINED)).await;
    let later = save(&b, 72.0).await;
    let later_id = string(&later, "id");
    eventually(10_000, "the save after the wipe uploads", || async { completed(&b, "u1", &later_id).await }).await;
    assert!(a.is_leader() != b.is_leader() || !a.is_leader(), "never two uploaders");
    assert!(keys(&stub).len() >= 2);
    let errors = page_errors(errors_before);
    assert!(errors.is_empty(), "errors reached the page: {errors:?}");
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn f3_an_uploader_with_no_heartbeat_record_is_taken_over() {
    let db = fresh_db("no-beat");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    // Another context holds the upload lock and never writes a heartbeat (frozen, or its
    // database was wiped under it): it will never upload.
    let frozen = hold_lock(&lock_name(&db, "u1"), false);
    eventually(2_000, "the frozen context holds the lock", || async { get(&frozen, "granted").is_truthy() }).await;

    let outbox = open(&db, CFG).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    // The contract's bound: 2 × processingIntervalMs + requestTimeoutMs + 1 s (1.2 s here).
    eventually(8_000, "the follower takes over and uploads", || async { completed(&outbox, "u1", &id).await }).await;
    assert!(outbox.is_leader());
    assert_eq!(keys(&stub).len(), 1);
    call(&frozen, "release", &[]);
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f3_calls_queued_behind_another_tabs_long_transaction_settle_at_their_bound() {
    let db = fresh_db("long-tx");
    let _stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 3600000, "requestTimeoutMs": 1000, "log": "off"}"#).await;
    let idle = open(&db, r#"{"processingIntervalMs": 3600000, "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0).await;
    eventually(3_000, "u1's uploader", || async { outbox.is_leader() }).await;
    let event_id = string(&events(&outbox, r#"{"userId": "u1"}"#).await[0], "id");
    // Held for 25 s: each call below must settle well before that (10 s for storage; a pass
    // 10 s + requestTimeoutMs).
    let hold = resolves(5_000, "the other tab's transaction", hold_transaction(&db, 25_000)).await;
    // And Web Locks that do not answer: `resetForRetry` asks them who is alive (up to 1 s) before
    // its transaction, which then had a full 10 s of its own (settled at 10 s and more).
    hang_locks_query(true);
    // Nothing to reset: answered at once, with no transaction to wait for (it waited
    // for the bound, then said "it may have been stored").
    let none = resolves(1_000, "resetForRetry([]) behind the transaction", idle.reset_for_retry(js_sys::Array::new().into())).await;
    assert_eq!(none.as_f64(), Some(0.0));
    // Taken right before the calls below (not before the one above): their time is theirs alone.
    let t0 = js_sys::Date::now();
    // Calls whose requests are queued too (a review asked whether their request events, not only
    // the transaction's end, come in time), made at once so they wait side by side.
    let waiting = [
        ("resetForRetry([id])", idle.reset_for_retry(js_sys::Array::of1(&JsValue::from_str(&event_id)).into())),
        ("stats()", idle.stats(JsValue::from_str("u1"))),
        ("events()", idle.events(json(r#"{"userId": "u1"}"#))),
        ("entries()", idle.entries(JsValue::from_str("u1"))),
        ("saveWeight()", idle.save_weight(JsValue::from_f64(71.0), json(r#"{"userId": "u1"}"#))),
    ];
    for (what, call) in waiting {
        let error = settles(14_000, &format!("{what} behind the transaction"), call).await.expect_err(what);
        // Made at t0, each settles within the contract's 10 s, the wait for the locks included
        // (awaited in order: a later call's time is at most the earlier one's, or its own).
        let took = js_sys::Date::now() - t0;
        assert!(took < 10_000.0, "{what} settled {took} ms after it was called");
        assert_eq!(get(&error, "code").as_string().as_deref(), Some("TIMEOUT"), "{what}");
        if what == "saveWeight()" {
            // Its writes were still queued, so the abort took: it says nothing was stored.
            assert!(message(&error).contains("nothing of it was stored"), "{}", message(&error));
        }
    }
    hang_locks_query(false);
    let pass = settles(14_000, "processNow() behind the transaction", outbox.process_now()).await;
    if let Err(e) = &pass {
        assert_eq!(get(e, "code").as_string().as_deref(), Some("TIMEOUT"), "{}", message(e));
    }
    assert!(js_sys::Date::now() - t0 < 24_000.0, "both settled before the transaction ended");
    let _ = wasm_bindgen_futures::JsFuture::from(get(&hold, "ended").unchecked_into::<js_sys::Promise>()).await;
    // Afterwards everything works, and the save is delivered.
    let _ = process_now(&outbox, 10_000).await;
    eventually(10_000, "the save uploads once the transaction is over", || async { all_completed(&outbox, 1).await }).await;
    // The save that timed out stored nothing.
    assert_eq!(events(&outbox, r#"{"userId": "u1"}"#).await.len(), 1, "only the first save's event");
    finish(&db, &[&outbox, &idle]).await;
}

/// A review found: an upload result storage refused (here: queued behind another tab's long
/// transaction past its 10 s bound) was retried only by this context's next pass. After a logout
/// (`stop()`) no pass came, and the event stayed `processing`, held in flight by a live context,
/// for as long as the page lived (CONTRACT §3: a live context never leaves an event processing).
/// Now such results are retried until recorded, whether or not this context still uploads.
#[wasm_bindgen_test]
async fn a_result_storage_refused_is_recorded_after_a_logout() {
    let db = fresh_db("unrecorded-after-stop");
    let stub = stub_fetch(&json(r#"[{"hold": "answer"}]"#), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 100, "requestTimeoutMs": 20000, "backoffMs": [100], "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    eventually(5_000, "the upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("answer")]).is_truthy() }).await;
    // Another tab holds every store for 14 s; the server's answer arrives now.
    let hold = resolves(5_000, "the other tab's transaction", hold_transaction(&db, 14_000)).await;
    call(&stub, "release", &[JsValue::from_str("answer")]);
    outbox.stop();
    let _ = wasm_bindgen_futures::JsFuture::from(get(&hold, "ended").unchecked_into::<js_sys::Promise>()).await;
    eventually(10_000, "the answer is recorded once storage takes writes again", || async { completed(&outbox, "u1", &id).await }).await;
    let sent: Vec<String> =
        requests(&stub).iter().map(|r| format!("{} {}", opt_string(r, "key").unwrap_or_default(), opt_string(r, "path").unwrap_or_default())).collect();
    assert_eq!(sent.len(), 1, "sent once: {sent:?}");
    finish(&db, &[&outbox]).await;
}

/// A review found the same gap for claims not sent yet: handing them back at the end of a pass
/// failed under the same conditions, and they stayed `processing` while the page lived.
#[wasm_bindgen_test]
async fn unsent_claims_storage_refused_to_hand_back_go_back_after_a_logout() {
    let db = fresh_db("unreleased-after-stop");
    let stub = stub_fetch(&json(r#"[{"hold": "answer"}]"#), &json(r#"{"status": 201}"#));
    let outbox =
        open(&db, r#"{"processingIntervalMs": 100, "requestTimeoutMs": 20000, "batchSize": 3, "maxConcurrent": 1, "backoffMs": [100], "log": "off"}"#).await;
    outbox.stop();
    for kg in [70.0, 71.0, 72.0] {
        resolves(10_000, "saveWeight", outbox.save_weight(JsValue::from_f64(kg), json(r#"{"userId": "u1"}"#))).await;
    }
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the first upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("answer")]).is_truthy() }).await;
    let hold = resolves(5_000, "the other tab's transaction", hold_transaction(&db, 22_000)).await;
    outbox.stop();
    call(&stub, "release", &[JsValue::from_str("answer")]);
    let _ = wasm_bindgen_futures::JsFuture::from(get(&hold, "ended").unchecked_into::<js_sys::Promise>()).await;
    eventually(10_000, "nothing left processing once storage takes writes again", || async {
        let all = events(&outbox, r#"{"userId": "u1"}"#).await;
        all.len() == 3 && all.iter().all(|e| opt_string(e, "status").as_deref() != Some("processing"))
    })
    .await;
    assert_eq!(requests(&stub).len(), 1, "the two unsent events were not sent after the logout");
    finish(&db, &[&outbox]).await;
}

/// A review found: an update whose entry was gone from storage, with no tombstone either (removed
/// by other code, or its delete acknowledged before the update was reset), waited for a backend
/// id that could never come: retried every 60 s, forever, with a message blaming its create, while
/// health said "ok". Now it gives up at once, saying why, and nothing is sent for it.
#[wasm_bindgen_test]
async fn an_update_whose_entry_is_gone_from_storage_gives_up_saying_why() {
    let db = fresh_db("orphan-update");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, CFG).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    eventually(5_000, "the create", || async { completed(&outbox, "u1", &id).await }).await;
    outbox.stop();
    resolves(5_000, "update", outbox.update(JsValue::from_str(&id), json(r#"{"quantity": 71}"#))).await;
    ok(raw_delete(&db, "entries", &id)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let gave_up = || async { events(&outbox, r#"{"userId": "u1", "status": "failed"}"#).await.into_iter().find(|e| get(e, "gaveUp").as_bool() == Some(true)) };
    eventually(5_000, "the update gives up", || async { gave_up().await.is_some() }).await;
    let failed = gave_up().await.unwrap();
    assert_eq!(string(&failed, "operation"), "update");
    let message = string(&failed, "errorMessage");
    assert!(message.contains("no longer stored"), "{message}");
    assert_eq!(requests(&stub).len(), 1, "only the create was sent");
    assert_eq!(string(&stats(&outbox, "u1").await, "health"), "failing");
    finish(&db, &[&outbox]).await;
}

/// A `subscribe()` made while another tab held the database never got its first
/// callback: the stats read gave up at the bound, the callback was dropped, and in a quiet app
/// nothing came until some count changed. Now the first reading is tried again until it comes.
#[wasm_bindgen_test]
async fn a_subscriber_added_while_storage_is_held_hears_the_stats_once_it_frees_up() {
    let db = fresh_db("subscribe-held");
    let _stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 3600000, "requestTimeoutMs": 1000, "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    save(&outbox, 70.0).await;
    let _ = process_now(&outbox, 10_000).await;
    eventually(5_000, "the save is uploaded", || async { all_completed(&outbox, 1).await }).await;
    // Nothing happens from here on but the held transaction and the subscription.
    let hold = resolves(5_000, "the other tab's transaction", hold_transaction(&db, 11_000)).await;
    let heard = subscribe_all(&outbox);
    let _ = wasm_bindgen_futures::JsFuture::from(get(&hold, "ended").unchecked_into::<js_sys::Promise>()).await;
    eventually(5_000, "the first callback, once storage frees up", || async { heard.all.length() > 0 }).await;
    assert_eq!(num(&heard.all.get(0), "completed"), 1.0, "{:?}", heard.all.get(0));
    heard.off();
    finish(&db, &[&outbox]).await;
}

/// A `processNow()` whose pass could not read or claim (another tab holds the stores past the
/// call's bound) answered as a finished pass that found nothing to do, all zeros (probe X, X3):
/// the caller could not tell "nothing due" from "storage stuck". It now rejects with the pass's
/// error (or, should its own bound come first, answers `finished: false`).
#[wasm_bindgen_test]
async fn f3_a_process_now_whose_pass_failed_says_so() {
    let db = fresh_db("pn-failed");
    let _stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 3600000, "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(3_000, "u1's uploader", || async { outbox.is_leader() }).await;
    sleep(300).await; // its first pass is over
    let hold = resolves(5_000, "the other tab's transaction", hold_transaction(&db, 14_000)).await;
    match settles(14_000, "processNow() behind the transaction", outbox.process_now()).await {
        Err(e) => assert_eq!(get(&e, "code").as_string().as_deref(), Some("TIMEOUT"), "{}", message(&e)),
        Ok(report) => assert_eq!(get(&report, "finished").as_bool(), Some(false), "a pass that could not claim reported as finished: {report:?}"),
    }
    let _ = wasm_bindgen_futures::JsFuture::from(get(&hold, "ended").unchecked_into::<js_sys::Promise>()).await;
    finish(&db, &[&outbox]).await;
}

/// Review AA (M1): an edit takes back an event claimed here but not yet sent before its own
/// transaction commits. When that transaction failed, the event stayed claimed in storage, and
/// the pass dropped it without handing it back: `processing` until this context's next pass for
/// that user (never, once it stopped uploading for it), then recovered as an interrupted upload,
/// "may have been stored", its request counted though none went out. Now the pass hands it back.
#[wasm_bindgen_test]
async fn an_unsent_claim_an_edit_took_back_is_handed_back_when_the_edit_fails() {
    let db = fresh_db("withdrawn-edit-fails");
    let stub = stub_fetch(&json(r#"[{"hold": "first"}]"#), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 3600000, "requestTimeoutMs": 8000, "maxConcurrent": 1, "batchSize": 10, "log": "off"}"#).await;
    let a = string(&save_for(&outbox, 70.0).await, "id");
    let b = string(&save_for(&outbox, 71.0).await, "id");
    outbox.start(JsValue::from_str("u1")).unwrap();
    // One pass claims both: a's upload is held, b waits for the one upload slot.
    eventually(5_000, "a's upload held", || async { call(&stub, "isHeld", &[JsValue::from_str("first")]).is_truthy() }).await;
    fail_next_put("entries");
    let edit = settles(5_000, "update", outbox.update(JsValue::from_str(&b), json(r#"{"quantity": 72}"#))).await;
    assert!(edit.is_err(), "the edit's transaction failed: {edit:?}");
    call(&stub, "release", &[JsValue::from_str("first")]);
    // The pass ends; b is back in the queue, never sent, not "interrupted".
    eventually(5_000, "b handed back", || async { string(&event_of(&outbox, "u1", &b).await, "status") == "pending" }).await;
    let e = event_of(&outbox, "u1", &b).await;
    assert_eq!(num(&e, "requestCount"), 0.0, "no request went out for it: {e:?}");
    assert!(opt_string(&e, "errorMessage").is_none(), "{e:?}");
    assert_eq!(requests(&stub).len(), 1, "only a's request");
    // And it goes at the next pass, once.
    process_now(&outbox, 10_000).await;
    eventually(5_000, "both delivered", || async { all_completed(&outbox, 2).await }).await;
    let e = event_of(&outbox, "u1", &b).await;
    assert_eq!(num(&e, "requestCount"), sent(&stub, &string(&e, "id")) as f64, "{e:?}");
    assert!(completed(&outbox, "u1", &a).await);
    finish(&db, &[&outbox]).await;
}

/// Review AB (AB-1): the in-flight ledger kept its marks per event, not per claim. An event an
/// edit took back and the same pass claimed again had two claims here; handing back the first
/// (at a switch of user or a logout) removed the second's "sending" mark while its request was
/// out, and the next edit took back an event on the wire: folded into the create being sent, it
/// was lost when that create's 201 came (the server kept the older value).
#[wasm_bindgen_test]
async fn handing_back_a_claim_an_edit_took_back_leaves_the_events_next_claim_in_flight() {
    let db = fresh_db("withdrawn-reclaimed");
    let stub = stub_fetch(&json(r#"[{"hold": "a"}, {"hold": "c"}, {"hold": "b"}]"#), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 3600000, "requestTimeoutMs": 8000, "maxConcurrent": 2, "batchSize": 10, "log": "off"}"#).await;
    save_for(&outbox, 70.0).await;
    save_for(&outbox, 75.0).await;
    let b = string(&save_for(&outbox, 71.0).await, "id");
    let update = |kg: &str| resolves(5_000, "update", outbox.update(JsValue::from_str(&b), json(&format!(r#"{{"quantity": {kg}}}"#))));
    let held = |name: &'static str| {
        let stub = &stub;
        async move { call(stub, "isHeld", &[JsValue::from_str(name)]).is_truthy() }
    };
    outbox.start(JsValue::from_str("u1")).unwrap();
    // One pass claims all three; a's and c's uploads are held, b waits for a slot. An edit takes
    // b back (it folds into the create).
    eventually(5_000, "a's and c's uploads held", || async { held("a").await && held("c").await }).await;
    update("72").await;
    // c answers; its slot claims b again in the same pass (a is still out) and sends it (72).
    call(&stub, "release", &[JsValue::from_str("c")]);
    eventually(5_000, "b's upload held", || held("b")).await;
    // A logout hands back the pass's first claim of b; its second is still on the wire.
    outbox.stop();
    sleep(1_000).await;
    update("73").await;
    call(&stub, "release", &[JsValue::from_str("b")]);
    call(&stub, "release", &[JsValue::from_str("a")]);
    outbox.start(JsValue::from_str("u1")).unwrap();
    process_now(&outbox, 10_000).await;
    eventually(5_000, "everything delivered", || async {
        events(&outbox, r#"{"userId": "u1"}"#).await.iter().all(|e| opt_string(e, "status").as_deref() == Some("completed"))
    })
    .await;
    // The last value reached the server: as a PUT after the create that carried 72.
    let sent_b: Vec<(String, f64)> = requests(&stub)
        .iter()
        .filter(|r| get(&get(r, "body"), "localId").as_string().as_deref() == Some(b.as_str()))
        .map(|r| (string(r, "method"), num(&get(r, "body"), "quantity")))
        .collect();
    assert_eq!(sent_b, vec![("POST".to_owned(), 72.0), ("PUT".to_owned(), 73.0)], "what was sent for b");
    finish(&db, &[&outbox]).await;
}

/// Probe V (V2): a result storage refused to record (full) left `stats()` saying nothing:
/// `lastError` lives in the user's meta record, the very write that failed, so it stayed null
/// (and `health` "ok") while nothing got recorded. It now shows the failure this context saw;
/// the result is recorded by the next pass.
#[wasm_bindgen_test]
async fn a_result_storage_refuses_to_record_shows_as_the_last_error() {
    let db = fresh_db("last-error-unrecorded");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let outbox = open(&db, r#"{"processingIntervalMs": 60000, "log": "off"}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    process_now(&outbox, 5_000).await;
    let restore = fail_next_put_as("meta", "user:u1", "QuotaExceededError");
    save(&outbox, 70.0).await;
    eventually(5_000, "the upload", || async { requests(&stub).len() == 1 }).await;
    eventually(5_000, "the failure to record it shown", || async {
        opt_string(&stats(&outbox, "u1").await, "lastError").is_some_and(|e| e.contains("storage is full"))
    })
    .await;
    let s = stats(&outbox, "u1").await;
    assert!(num(&s, "lastErrorAt") > 0.0, "{s:?}");
    restore.call0(&JsValue::NULL).unwrap();
    // Space back: a next pass records it, and nothing is sent again.
    eventually(5_000, "the result recorded", || async { num(&stats(&outbox, "u1").await, "completed") == 1.0 }).await;
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&outbox]).await;
}
