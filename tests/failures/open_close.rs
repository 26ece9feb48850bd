//! Fault 8: `Outbox.open` hung forever on a blocked upgrade; `close()` during a pass left its
//! claims for the 5-minute stale timeout; the previous user's lock release could drop the new
//! user's. Now: open rejects with BLOCKED after a bounded wait, close() hands claims back at once,
//! and each user's lock is released by its own handle.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

#[wasm_bindgen_test]
async fn f8_open_rejects_with_blocked_when_another_connection_never_closes() {
    let db = fresh_db("blocked");
    // Another tab of an older app version: connected at v1, ignores versionchange.
    let stubborn = resolves(5_000, "the other connection", stubborn_connection(&db, 1)).await;
    let r = within(12_000, progress_outbox::Outbox::open(config(&db, "{}"))).await;
    let e = match r {
        None => panic!("Outbox.open hangs while the upgrade is blocked"),
        Some(Ok(o)) => {
            o.close();
            panic!("Outbox.open resolved although the upgrade was blocked")
        }
        Some(Err(e)) => e,
    };
    assert!(is_instance(&e, "Error"), "{e:?}");
    assert_eq!(opt_string(&e, "code").as_deref(), Some("BLOCKED"), "{}", message(&e));
    // Once the other connection closes, open works (the late upgrade, if any, is harmless).
    call(&stubborn, "close", &[]);
    let outbox = open(&db, "{}").await;
    let saved = resolves(10_000, "saveWeight", outbox.save_weight(JsValue::from_f64(70.0), json(r#"{"userId": "u1"}"#))).await;
    assert!(saved.is_object());
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f8_close_during_a_pass_hands_its_claims_back() {
    let db = fresh_db("close-hands-back");
    // The default staleAfterMs (5 minutes): only a hand-back lets the other outbox go on now.
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 5000, "batchSize": 3, "maxConcurrent": 1, "backoffMs": [100]}"#;
    let stub = stub_fetch(&json(r#"[{"hold": "first"}]"#), &json(r#"{"status": 201}"#));
    let with_token = |t: &str| {
        let c = config(&db, cfg);
        set(&c, "token", &JsValue::from_str(t));
        c
    };
    let a = open_with(with_token("A")).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a leads", || async { a.is_leader() }).await;
    let b = open_with(with_token("B")).await;
    b.start(JsValue::from_str("u1")).unwrap();
    for kg in [70.0, 71.0, 72.0] {
        resolves(10_000, "saveWeight", a.save_weight(JsValue::from_f64(kg), JsValue::UNDEFINED)).await;
    }
    eventually(5_000, "the first upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("first")]).is_truthy() }).await;

    // Three claimed, one in flight: close.
    a.close();
    call(&stub, "release", &[JsValue::from_str("first")]);
    eventually(8_000, "b uploads the two claims a handed back", || async { keys_sent_with(&stub, "Bearer B").len() == 2 }).await;
    eventually(5_000, "all three completed", || async {
        let s = stats(&b, "u1").await;
        num(&s, "completed") == 3.0 && num(&s, "processing") == 0.0
    })
    .await;
    assert_eq!(keys_sent_with(&stub, "Bearer A").len(), 1);
    for k in keys(&stub) {
        assert_eq!(sent(&stub, &k), 1, "{k} sent twice");
    }
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn f8_each_users_lock_is_released_by_its_own_handle() {
    let db = fresh_db("two-users");
    let _stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 2000}"#;
    let (u1, u2) = (lock_name(&db, "u1"), lock_name(&db, "u2"));

    // One outbox switches from u1 to u2: u1's lock goes, u2's stays held.
    let a = open(&db, cfg).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a leads u1", || async { a.is_leader() }).await;
    a.start(JsValue::from_str("u2")).unwrap();
    eventually(5_000, "a leads u2", || async { a.is_leader() }).await;
    eventually(5_000, "u1's lock released", || async { lock_state(&u1).await.0 == 0 }).await;
    sleep(300).await;
    assert_eq!(lock_state(&u2).await.0, 1, "the switch dropped the new user's lock");
    assert!(a.is_leader());

    // Another outbox for u1; then the first one logs out (u2): u1's lock must stay with b.
    let b = open(&db, cfg).await;
    b.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "b leads u1", || async { b.is_leader() }).await;
    a.stop();
    eventually(5_000, "u2's lock released by stop()", || async { lock_state(&u2).await.0 == 0 }).await;
    sleep(300).await;
    assert_eq!(lock_state(&u1).await.0, 1, "stop() of u2 released u1's lock");
    assert!(b.is_leader(), "b still leads u1");

    // And a third outbox for u1 waits (the lock is b's, not free).
    let c = open(&db, cfg).await;
    c.start(JsValue::from_str("u1")).unwrap();
    sleep(500).await;
    assert!(!c.is_leader(), "two uploaders for u1");
    let (held, pending) = lock_state(&u1).await;
    assert_eq!((held, pending), (1, 1));
    finish(&db, &[&a, &b, &c]).await;
}

#[wasm_bindgen_test]
async fn f8_after_a_user_switch_freeze_releases_the_new_users_lock() {
    let db = fresh_db("switch-freeze");
    // Both uploads are held open by the server.
    let stub = stub_fetch(&json(r#"[{"hold": "first"}, {"hold": "second"}]"#), &json(r#"{"status": 201}"#));
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 8000}"#;
    let u2 = lock_name(&db, "u2");
    let a = open(&db, cfg).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "a leads u1", || async { a.is_leader() }).await;
    resolves(10_000, "saveWeight", a.save_weight(JsValue::from_f64(70.0), JsValue::UNDEFINED)).await;
    eventually(5_000, "u1's upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("first")]).is_truthy() }).await;

    // Switch to u2 while u1's pass is still running; u1's processor lets go of its lock after it.
    a.start(JsValue::from_str("u2")).unwrap();
    eventually(5_000, "u2's lock is a's", || async { lock_state(&u2).await.0 == 1 }).await;
    call(&stub, "release", &[JsValue::from_str("first")]);
    eventually(5_000, "u1's lock released", || async { lock_state(&lock_name(&db, "u1")).await.0 == 0 }).await;
    resolves(10_000, "saveWeight", a.save_weight(JsValue::from_f64(71.0), JsValue::UNDEFINED)).await;
    eventually(5_000, "u2's upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("second")]).is_truthy() }).await;

    // Another context waits for u2's lock. The page freezes (no code runs after this event): the
    // lock of u2, the current user, must be released in the event itself, not after the pass.
    let other = hold_lock(&u2, false);
    sleep(100).await;
    assert!(!get(&other, "granted").is_truthy());
    dispatch_freeze();
    eventually(1_000, "u2's lock handed on at the freeze, while its upload is still in flight", || async { get(&other, "granted").is_truthy() }).await;
    assert!(call(&stub, "isHeld", &[JsValue::from_str("second")]).is_truthy());
    assert!(!a.is_leader());
    call(&stub, "release", &[JsValue::from_str("second")]);
    call(&other, "release", &[]);
    finish(&db, &[&a]).await;
}

/// A review found: the console calls had no `catch`. A console an app or a monitoring tool wrapped
/// that throws unwound through the outbox in the middle of a call, skipping Rust's cleanup (the
/// call never settled, and a `RefCell` left borrowed would trap the next one). Now a log line that
/// throws is dropped, and everything else goes on.
#[wasm_bindgen_test]
async fn a_console_that_throws_changes_nothing() {
    let db = fresh_db("console-throws");
    let stub = stub_fetch(&json("[]"), &json(r#"{"status": 201}"#));
    let restore = js_sys::Function::new_no_args(
        "const orig = { debug: console.debug, info: console.info, warn: console.warn };
         for (const l of Object.keys(orig)) console[l] = () => { throw new Error('console broken'); };
         const restore = () => { clearTimeout(timer); Object.assign(console, orig); };
         const timer = setTimeout(restore, 20000); // a panic runs no drops: never leave it broken
         return restore;",
    )
    .call0(&JsValue::NULL)
    .unwrap()
    .unchecked_into::<js_sys::Function>();
    let run = async {
        let outbox = open(&db, r#"{"processingIntervalMs": 100, "log": "debug"}"#).await;
        outbox.start(JsValue::from_str("u1")).unwrap();
        let entry = save(&outbox, 70.0).await;
        eventually(5_000, "the upload", || async { all_completed(&outbox, 1).await }).await;
        let s = stats(&outbox, "u1").await;
        (outbox, entry, s)
    };
    let done = within(10_000, run).await;
    let _ = restore.call0(&JsValue::NULL);
    let Some((outbox, _entry, s)) = done else { panic!("with a console that throws, a call never settled") };
    assert_eq!(get(&s, "completed").as_f64(), Some(1.0));
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&outbox]).await;
}

/// Probe U (fault 3): once `upgradeneeded` had fired, `Outbox.open` waited for the upgrade with no
/// bound (a running upgrade is never cut off); when the browser then answered neither success nor
/// error, the open never settled. The upgrade counts as running until its transaction ends.
#[wasm_bindgen_test]
async fn open_settles_when_no_answer_follows_an_upgrade() {
    let db = fresh_db("open-after-upgrade");
    let restore = swallow_open_success();
    let opened = within(20_000, progress_outbox::Outbox::open(config(&db, "{}"))).await;
    restore.call0(&JsValue::NULL).unwrap();
    let error = match opened {
        None => panic!("Outbox.open did not settle within 20 s after its upgrade"),
        Some(Ok(_)) => panic!("Outbox.open resolved without a connection"),
        Some(Err(e)) => e,
    };
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("TIMEOUT"), "{}", message(&error));
    // The database it upgraded opens normally afterwards, and no connection is left open: the
    // database can be deleted at once.
    let outbox = open(&db, "{}").await;
    outbox.close();
    // A connection left open blocks the delete ("blocked"); a slow disk only delays it.
    let wiped = resolves(15_000, "deleteDatabase", wipe_db(&db, 10_000)).await;
    assert_ne!(wiped.as_string().as_deref(), Some("blocked"), "a connection was left open");
    finish(&db, &[]).await;
}
