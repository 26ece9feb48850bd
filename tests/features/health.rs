//! `stats().health` (issue 13): each of "offline", "failing" (an event gave up; or `failingAfter`
//! failed answers in a row) and "stalled" (`stalledAfterMs`) is reached and left, back to "ok",
//! and `subscribe()` hears each change.

use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

async fn health(o: &Ob) -> String {
    string(&o.stats("u1").await, "health")
}

async fn health_is(o: &Ob, want: &str, ms: u32) {
    let what = format!("stats().health to be \"{want}\"");
    eventually(ms, &what, || async { health(o).await == want }).await;
}

/// A subscriber that remembers every health it was told.
struct Heard {
    rec: JsValue,
    off: js_sys::Function,
}

impl Heard {
    async fn subscribe(o: &Ob) -> Heard {
        let rec = recorder();
        let off = o.call_sync("subscribe", &[get(&rec, "fn")]).unwrap();
        Heard { rec, off: off.into() }
    }

    fn healths(&self) -> Vec<String> {
        array(&get(&self.rec, "seen")).iter().map(|s| string(s, "health")).collect()
    }

    /// Waits until the subscriber has been told `want` (after what it had heard at `from`).
    async fn told(&self, want: &str, from: usize, ms: u32) {
        let what = format!("subscribe() to report health \"{want}\"");
        eventually(ms, &what, || async { self.healths().iter().skip(from).any(|h| h == want) }).await;
    }

    fn last(&self) -> Option<String> {
        self.healths().pop()
    }

    fn off(&self) {
        self.off.call0(&JsValue::NULL).unwrap();
    }
}

#[wasm_bindgen_test]
async fn offline_is_reached_and_left() {
    let db = fresh_db("health-offline");
    let srv = Server::new("", "");
    // (The platform is asked again only after the last backoff step: not within this test.)
    let o = Ob::open(&db, r#"{"backoffMs": [600000]}"#).await;
    o.start("u1");
    let heard = Heard::subscribe(&o).await;
    health_is(&o, "ok", 2000).await;
    heard.told("ok", 0, 2000).await;
    let at = heard.healths().len();
    set_online(false);
    assert_eq!(health(&o).await, "offline");
    heard.told("offline", at, 2000).await;
    let e = o.save("weight", 70.0, "{}").await;
    assert_eq!(health(&o).await, "offline", "offline wins over everything else");
    let report = o.process_now().await;
    assert_eq!(get(&report, "offline").as_bool(), Some(true));
    assert!(srv.requests().is_empty(), "no upload starts while the platform reports offline");
    let at = heard.healths().len();
    set_online(true);
    health_is(&o, "ok", 3000).await;
    heard.told("ok", at, 2000).await;
    o.drained("u1", Some(1), 3000).await;
    assert_eq!(srv.by_local(&string(&e, "id")).len(), 1);
    assert_eq!(heard.last().as_deref(), Some("ok"));
    heard.off();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn failing_when_an_event_gave_up_until_it_is_sent() {
    let db = fresh_db("health-gaveup");
    let srv = Server::new("(req, st) => req.method === 'POST' && !st.fixed ? { status: 422, body: { error: 'unit not accepted' } } : undefined", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let heard = Heard::subscribe(&o).await;
    heard.told("ok", 0, 2000).await;
    let e = o.save("weight", 70.0, "{}").await;
    let ev = o.events_of("u1", &string(&e, "id")).await.remove(0);
    let id = string(&ev, "id");
    let failed = o.wait_status("u1", &id, "failed", 3000).await;
    assert_eq!(get(&failed, "gaveUp").as_bool(), Some(true));
    let st = o.stats("u1").await;
    assert_eq!((string(&st, "health"), num(&st, "gaveUp")), ("failing".to_owned(), 1.0));
    heard.told("failing", 0, 2000).await;

    set(&srv.st, "fixed", &JsValue::TRUE);
    let at = heard.healths().len();
    o.ok("resetForRetry", &[js_sys::Array::of1(&s(&id)).into()]).await;
    o.wait_status("u1", &id, "completed", 3000).await;
    health_is(&o, "ok", 2000).await;
    heard.told("ok", at, 2000).await;
    heard.off();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn failing_after_failing_after_failed_answers_in_a_row_until_one_succeeds() {
    let db = fresh_db("health-inarow");
    let srv = Server::new("(req, st) => req.method === 'POST' && !st.fixed ? { status: 503, body: { error: 'down' } } : undefined", "");
    let o = Ob::open(&db, r#"{"failingAfter": 3, "maxAttempts": 50, "backoffMs": [20]}"#).await;
    o.start("u1");
    let heard = Heard::subscribe(&o).await;
    heard.told("ok", 0, 2000).await;
    o.save("weight", 70.0, "{}").await;
    eventually(3000, "two failed answers", || async { num(&o.stats("u1").await, "failedInARow") >= 2.0 }).await;
    // Retries are automatic (20 ms apart): the third failed answer in a row makes it "failing".
    health_is(&o, "failing", 3000).await;
    let st = o.stats("u1").await;
    assert_eq!(num(&st, "gaveUp"), 0.0, "failing without any event giving up");
    assert!(num(&st, "failedInARow") >= 3.0);
    heard.told("failing", 0, 2000).await;
    let at = heard.healths().len();
    set(&srv.st, "fixed", &JsValue::TRUE);
    o.drained("u1", Some(1), 3000).await;
    health_is(&o, "ok", 2000).await;
    assert_eq!(num(&o.stats("u1").await, "failedInARow"), 0.0);
    heard.told("ok", at, 2000).await;
    heard.off();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn stalled_when_events_wait_too_long_until_they_are_sent() {
    let db = fresh_db("health-stalled");
    // No answer from the server: uploads wait out the backoff (a minute); nothing is delivered.
    let srv = Server::new("(req, st) => !st.fixed ? { networkError: true } : undefined", "");
    let o = Ob::open(&db, r#"{"stalledAfterMs": 300, "backoffMs": [60000]}"#).await;
    o.start("u1");
    let heard = Heard::subscribe(&o).await;
    heard.told("ok", 0, 2000).await;
    let first = o.save("weight", 70.0, "{}").await;
    assert_eq!(health(&o).await, "ok", "a fresh event is not stalled");
    eventually(3000, "the first upload to fail without an answer", || async {
        o.events_of("u1", &string(&first, "id")).await.iter().all(|e| string(e, "status") == "failed")
    })
    .await;
    let second = o.save("weight", 71.0, "{}").await;
    health_is(&o, "stalled", 3000).await;
    let st = o.stats("u1").await;
    assert_eq!((num(&st, "failedInARow"), num(&st, "gaveUp")), (0.0, 0.0), "stalled, not failing: no answer is not a failed answer");
    // Told while the processor waits out the backoff (no pass uploads anything meanwhile).
    heard.told("stalled", 0, 2000).await;

    // The server is back: both go, and health is ok again.
    set(&srv.st, "fixed", &JsValue::TRUE);
    let at = heard.healths().len();
    let first_event = string(&o.events_of("u1", &string(&first, "id")).await[0], "id");
    o.ok("resetForRetry", &[js_sys::Array::of1(&s(&first_event)).into()]).await;
    set_online(true);
    o.drained("u1", Some(2), 3000).await;
    assert_eq!(srv.by_local(&string(&second, "id")).len(), 1);
    health_is(&o, "ok", 2000).await;
    heard.told("ok", at, 2000).await;
    heard.off();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn stalled_needs_a_started_user_and_thresholds_are_validated() {
    let db = fresh_db("health-options");
    let _srv = Server::new("", "");
    for (extra, class) in [
        (r#"{"failingAfter": 0}"#, "RangeError"),
        (r#"{"failingAfter": 1.5}"#, "RangeError"),
        (r#"{"failingAfter": "3"}"#, "TypeError"),
        (r#"{"stalledAfterMs": 0}"#, "RangeError"),
        (r#"{"stalledAfterMs": -5}"#, "RangeError"),
        (r#"{"maxBatchEvents": 0}"#, "RangeError"),
        (r#"{"batchEndpoint": ""}"#, "RangeError"),
        (r#"{"batchEndpoint": 5}"#, "TypeError"),
    ] {
        let c = json(r#"{"endpoint": "/api/v1/progress", "log": "off"}"#);
        set(&c, "dbName", &s(&db));
        assign(&c, &json(extra));
        match progress_outbox::Outbox::open(c).await {
            Ok(_) => panic!("Outbox.open accepted {extra}"),
            Err(e) => assert!(is_instance(&e, class), "{extra}: expected a {class}, got {}", message(&e)),
        }
    }
    let o = Ob::open(&db, r#"{"stalledAfterMs": 1, "failingAfter": 1, "maxBatchEvents": 1000, "batchEndpoint": null}"#).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    sleep(20).await;
    assert_eq!(health(&o).await, "ok", "not stalled while nobody is started (nothing is supposed to upload)");
    finish(&db, &[&o]).await;
}
