//! Fault 4: clock jumps. Every persisted deadline was a wall-clock stamp: a clock 10 years ahead
//! and then corrected left an event due in 2036, +1 day and back turned a backoff into a day, -1 h
//! added an hour; across contexts a forward jump made a live uploader look dead, and a follower
//! re-sent an event still in flight. Now retries wait by the monotonic clock (a deadline further
//! ahead than its rule allows is due, unless this context times it: then the clock was set back
//! and the backoff still runs; a year back had fired every waiting retry at once, Retry-After
//! ignored), and liveness is judged by heartbeats over elapsed time.
//!
//! The wall clock is `Date.now` with an offset (tests/failures/harness.js); `performance.now` is
//! left alone. Both outboxes of the two-context test live in this page, so both see the jump.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

// One backoff step of 1.5 s: each test waits at most a few seconds for the retry.
const CFG: &str = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 2000, "backoffMs": [1500], "maxAttempts": 5}"#;

async fn status_of(outbox: &progress_outbox::Outbox, entry_id: &str) -> String {
    opt_string(&event_of(outbox, "u1", entry_id).await, "status").unwrap_or_default()
}

/// Saves one event with the clock at `during`, lets its first upload fail (503), then sets the
/// clock to `after`; the retry must come within its backoff (a few seconds), not at the wall time
/// the jumped clock implied.
async fn retry_after_jump(tag: &str, during: f64, after: f64) {
    let db = fresh_db(tag);
    set_clock_offset(0.0);
    let stub = stub_fetch(&json(r#"[{"status": 503}]"#), &json(r#"{"status": 201}"#));
    let outbox = open(&db, CFG).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "leading", || async { outbox.is_leader() }).await;
    set_clock_offset(during);
    let entry = save(&outbox, 70.0).await;
    let id = string(&entry, "id");
    eventually(5_000, "the first upload fails", || async { status_of(&outbox, &id).await == "failed" }).await;
    set_clock_offset(after);
    let failed = event_of(&outbox, "u1", &id).await;
    assert_eq!(num(&failed, "attemptCount"), 1.0, "{failed:?}");
    // The backoff is 1.5 s of elapsed time; 6 s is plenty, a wall-clock deadline is hours or years away.
    eventually(6_000, &format!("the retry after a clock jump of {during} ms (then {after} ms)"), || async { status_of(&outbox, &id).await == "completed" })
        .await;
    assert_eq!(requests(&stub).len(), 2, "one failure, one retry");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn f4_ten_years_ahead_during_a_failure_then_corrected() {
    retry_after_jump("clock-10y", 10.0 * YEAR_MS, 0.0).await;
}

#[wasm_bindgen_test]
async fn f4_one_day_ahead_during_a_failure_then_corrected() {
    retry_after_jump("clock-1d", DAY_MS, 0.0).await;
}

#[wasm_bindgen_test]
async fn f4_clock_set_back_one_hour_after_a_failure() {
    retry_after_jump("clock-minus-1h", 0.0, -HOUR_MS).await;
}

/// With the clock at `offset`: one save whose first upload fails (503), then its outbox closed.
/// Returns the fetch stub (every later request answered 201) and the entry's id.
async fn failed_once_then_closed(db: &str, offset: f64) -> (JsValue, String) {
    set_clock_offset(offset);
    let stub = stub_fetch(&json(r#"[{"status": 503}]"#), &json(r#"{"status": 201}"#));
    let first = open(db, CFG).await;
    first.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&first, 70.0).await;
    let id = string(&entry, "id");
    eventually(5_000, "the first upload fails", || async { status_of(&first, &id).await == "failed" }).await;
    first.close();
    (stub, id)
}

#[wasm_bindgen_test]
async fn f4_a_deadline_written_ten_years_ahead_is_due_after_a_reopen() {
    // No in-memory schedule survives a reload: the stored deadline (in 2036) must be judged by
    // its rule (never further than the longest backoff) when another outbox opens the database.
    let db = fresh_db("clock-reopen");
    let (stub, id) = failed_once_then_closed(&db, 10.0 * YEAR_MS).await;
    set_clock_offset(0.0);
    let second = open(&db, CFG).await;
    second.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "the retry by the reopened outbox", || async { status_of(&second, &id).await == "completed" }).await;
    assert_eq!(sent(&stub, &string(&event_of(&second, "u1", &id).await, "id")), 2);
    finish(&db, &[&second]).await;
}

#[wasm_bindgen_test]
async fn f4_a_forward_jump_never_makes_a_follower_resend_an_event_in_flight() {
    let db = fresh_db("clock-two");
    set_clock_offset(0.0);
    // The first upload is held open (the server is slow); everything else answers at once.
    let stub = stub_fetch(&json(r#"[{"hold": "first"}]"#), &json(r#"{"status": 201}"#));
    let cfg = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 4000, "staleAfterMs": 1000, "backoffMs": [100]}"#;
    let a = open(&db, cfg).await;
    a.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the first outbox leads", || async { a.is_leader() }).await;
    let b = open(&db, cfg).await;
    b.start(JsValue::from_str("u1")).unwrap();
    let entry = save(&a, 70.0).await;
    eventually(5_000, "the upload is in flight", || async { call(&stub, "isHeld", &[JsValue::from_str("first")]).is_truthy() }).await;
    let key = string(&requests(&stub)[0], "key");

    // While it is in flight (shorter than requestTimeoutMs, well past staleAfterMs), the clock
    // jumps a day, then ten years ahead.
    set_clock_offset(DAY_MS);
    sleep(1_200).await;
    set_clock_offset(10.0 * YEAR_MS);
    sleep(1_200).await;
    assert_eq!(sent(&stub, &key), 1, "the event was sent again while its first request was in flight");
    call(&stub, "release", &[JsValue::from_str("first")]);
    set_clock_offset(0.0);
    let id = string(&entry, "id");
    eventually(5_000, "the held upload completes", || async { status_of(&a, &id).await == "completed" }).await;
    sleep(500).await;
    assert_eq!(sent(&stub, &key), 1, "each Idempotency-Key is sent once: {:?}", keys(&stub));
    assert_eq!(requests(&stub).len(), 1);
    finish(&db, &[&a, &b]).await;
}

#[wasm_bindgen_test]
async fn f4_a_clock_set_back_a_year_fires_no_retry_before_its_backoff() {
    let db = fresh_db("clock-back-1y");
    set_clock_offset(0.0);
    // Five failures at once (the server rate-limits with Retry-After: 3), then it is healthy.
    let stub = stub_fetch(
        &json(
            r#"[{"status": 429, "headers": {"Retry-After": "3"}}, {"status": 429, "headers": {"Retry-After": "3"}}, {"status": 429, "headers": {"Retry-After": "3"}}]"#,
        ),
        &json(r#"{"status": 201}"#),
    );
    let outbox = open(&db, r#"{"processingIntervalMs": 100, "requestTimeoutMs": 2000, "backoffMs": [500], "maxAttempts": 5}"#).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    for kg in [70.0, 71.0, 72.0] {
        save(&outbox, kg).await;
    }
    eventually(5_000, "three rate-limited answers", || async { requests(&stub).len() == 3 }).await;
    set_clock_offset(-YEAR_MS);
    // The retries are 3 s away on the monotonic clock: none comes in the next 2 s.
    sleep(2_000).await;
    assert_eq!(requests(&stub).len(), 3, "a retry came before its Retry-After once the clock was set back");
    eventually(6_000, "the retries once Retry-After has elapsed", || async { all_completed(&outbox, 3).await }).await;
    set_clock_offset(0.0);
    finish(&db, &[&outbox]).await;
}

/// A review found (of this stop's bounded promotion): a retry already due when a context starts
/// uploading was left out of its monotonic schedule, to the claim's wall-clock range; a clock set
/// back an hour before that claim (here: the context starts offline, so its first claim comes
/// later) made it wait an hour more. Due is due, whatever the wall clock does next.
#[wasm_bindgen_test]
async fn f4_a_retry_due_at_takeover_stays_due_when_the_clock_is_then_set_back() {
    let db = fresh_db("clock-due-then-back");
    let (stub, id) = failed_once_then_closed(&db, 0.0).await;
    sleep(2_000).await; // its 1.5 s backoff is over: due on both clocks
    taken_over_offline_then_retried_after_the_clock_is_set_back(&db, &stub, &id, || {}).await;
}

/// A second outbox on `db` starts offline (nothing goes yet), `before_start` running between its
/// open and its start; once it leads, the clock is set back an hour and the network comes back:
/// the event `id` (failed once) must be retried within seconds, once.
async fn taken_over_offline_then_retried_after_the_clock_is_set_back(db: &str, stub: &JsValue, id: &str, before_start: impl FnOnce()) {
    set_online(false);
    let second = open(db, CFG).await;
    before_start();
    second.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the second outbox leads", || async { second.is_leader() }).await;
    sleep(300).await;
    set_clock_offset(-HOUR_MS);
    set_online(true);
    eventually(6_000, "the retry after the clock was set back", || async { status_of(&second, id).await == "completed" }).await;
    assert_eq!(sent(stub, &string(&event_of(&second, "u1", id).await, "id")), 2, "one failure, one retry");
    restore_online();
    set_clock_offset(0.0);
    finish(db, &[&second]).await;
}

/// The takeover reads every retrying event into the monotonic schedule. When that read failed,
/// the failure was dropped and the context led with no schedule: retries came due on the wall
/// clock only, so a clock then set back an hour held each of them back an hour instead of its
/// backoff (review X, F2). The read is made again at the next pass until it succeeds.
#[wasm_bindgen_test]
async fn f4_a_schedule_that_could_not_be_read_at_takeover_is_read_again() {
    let db = fresh_db("clock-schedule-reread");
    let (stub, id) = failed_once_then_closed(&db, 0.0).await;
    // The takeover's read of the retrying events fails.
    taken_over_offline_then_retried_after_the_clock_is_set_back(&db, &stub, &id, || fail_next_transaction("events", "readonly")).await;
}

/// A schedule read that kept failing (storage refusing it, or a read stuck behind another tab's
/// transaction for the call bound) was made again at every turn of the processing loop, each a
/// read of every retrying event (review Y, Y6). It is made again 1 s, 2 s, 4 s ... later, and the
/// loop wakes for it; once storage answers, the schedule is read and the retry goes.
#[wasm_bindgen_test]
async fn f4_a_schedule_read_that_keeps_failing_is_made_again_with_a_backoff() {
    let db = fresh_db("clock-schedule-backoff");
    let (stub, id) = failed_once_then_closed(&db, 0.0).await;
    let console = capture_console();
    let refuse = fail_state_reads(3);
    let second = open(&db, r#"{"processingIntervalMs": 100, "requestTimeoutMs": 2000, "backoffMs": [1500], "log": "warn"}"#).await;
    second.start(JsValue::from_str("u1")).unwrap();
    eventually(5_000, "the second outbox leads", || async { second.is_leader() }).await;
    sleep(3_500).await;
    let failed_reads = || console_lines(&console).iter().filter(|l| l.contains("retry schedule of user u1 could not be read")).count();
    let reads = failed_reads();
    refuse.call0(&JsValue::NULL).unwrap();
    assert!((2..=4).contains(&reads), "{reads} failed reads of the retry schedule in 3.5 s (at every turn: about 35)");
    // Storage answers again: the next read (4 s after the third) loads the schedule, and no
    // failed read is logged after it.
    sleep(5_000).await;
    let after = failed_reads();
    restore_console(&console);
    assert_eq!(after, reads, "the read was made again once storage answered");
    eventually(3_000, "the retry", || async { status_of(&second, &id).await == "completed" }).await;
    assert_eq!(sent(&stub, &string(&event_of(&second, "u1", &id).await, "id")), 2, "one failure, one retry");
    finish(&db, &[&second]).await;
}
