//! Batches (CONTRACT §2b): per-item results, answers that are not a complete result list, one
//! event per entry per batch with every operation, the adaptive size (stats().batchEvents),
//! network-aware limits (navigator.connection), and nothing changing without `batchEndpoint`.

use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const BATCH: &str = r#""batchEndpoint": "/api/v1/progress/batch""#;

fn cfg(extra: &str) -> String {
    if extra.is_empty() {
        format!("{{{BATCH}}}")
    } else {
        format!("{{{BATCH}, {extra}}}")
    }
}

async fn save_many(o: &Ob, user: &str, count: usize, first: f64) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let e = o.save("steps", first + i as f64, &format!(r#"{{"userId": "{user}"}}"#)).await;
        ids.push(string(&e, "id"));
    }
    ids
}

fn items(batch: &JsValue) -> Vec<JsValue> {
    array(&get(&get(batch, "body"), "events"))
}

#[wasm_bindgen_test]
async fn mixed_item_results_end_each_item_in_its_own_state() {
    let db = fresh_db("batch-mixed");
    let srv = Server::new(
        "",
        "(item) => item.quantity === 72 ? { status: 422, error: 'quantity rejected by policy' }
                 : item.quantity === 73 ? { status: 503, retryAfter: 7, error: 'busy' }
                 : item.quantity === 74 ? { status: 500, error: 'oops' } : undefined",
    );
    let o = Ob::open(&db, &cfg(r#""backoffMs": [1000, 1000], "maxAttempts": 5"#)).await;
    let mut ids = std::collections::HashMap::new();
    for q in [70.0, 71.0, 72.0, 73.0, 74.0] {
        let e = o.save("weight", q, r#"{"userId": "u1"}"#).await;
        ids.insert(q as u32, string(&e, "id"));
    }
    o.start("u1");
    eventually(3000, "every item to be answered", || async {
        o.events("u1").await.iter().all(|e| ["completed", "failed"].contains(&string(e, "status").as_str()))
    })
    .await;
    let batches = srv.batches();
    assert_eq!(batches.len(), 1, "five events, one batch");
    assert_eq!(srv.requests().len(), 1, "and no single requests");
    let b = &batches[0];
    assert!(get(b, "key").is_null(), "no Idempotency-Key header on a batch: each item has its own");
    let sent = items(b);
    assert_eq!(sent.len(), 5);
    let mut by_q = std::collections::HashMap::new();
    for (q, id) in &ids {
        let evs = o.events_of("u1", id).await;
        assert_eq!(evs.len(), 1);
        by_q.insert(*q, evs[0].clone());
    }
    let event_of = |q: u32| by_q[&q].clone();
    for item in &sent {
        let q = num(item, "quantity") as u32;
        let ev = event_of(q);
        assert_eq!(string(item, "idempotencyKey"), string(&ev, "id"));
        assert_eq!((string(item, "operation"), string(item, "localId"), string(item, "unit")), ("create".to_owned(), ids[&q].clone(), "kg".to_owned()));
        assert!(get(item, "backendId").is_undefined(), "a create has no backendId");
    }
    let entries = o.entries_of("u1").await;
    let backend = |q: u32| opt_string(entries.iter().find(|e| string(e, "id") == ids[&q]).unwrap(), "backendId");
    for q in [70, 71] {
        assert_eq!(string(&event_of(q), "status"), "completed");
        assert!(backend(q).is_some_and(|b| b.starts_with("srv-")), "{q}: acknowledged with its own id");
    }
    assert_ne!(backend(70), backend(71));
    let refused = event_of(72);
    assert_eq!((string(&refused, "status"), get(&refused, "gaveUp").as_bool(), num(&refused, "attemptCount")), ("failed".to_owned(), Some(true), 1.0));
    let msg = string(&refused, "errorMessage");
    assert!(msg.contains("422") && msg.contains("quantity rejected by policy"), "{msg}");
    assert!(get(&refused, "nextAttemptAt").is_null());
    let busy = event_of(73);
    assert_eq!((string(&busy, "status"), get(&busy, "gaveUp").as_bool(), num(&busy, "attemptCount")), ("failed".to_owned(), Some(false), 1.0));
    assert!(string(&busy, "errorMessage").contains("503"));
    let wait = num(&busy, "nextAttemptAt") - num(&busy, "lastAttemptAt");
    assert!((7000.0..9000.0).contains(&wait), "a 503 item retries after its retryAfter (7 s) rather than the 1 s backoff: {wait}");
    let oops = event_of(74);
    assert_eq!((string(&oops, "status"), get(&oops, "gaveUp").as_bool()), ("failed".to_owned(), Some(false)));
    let wait = num(&oops, "nextAttemptAt") - num(&oops, "lastAttemptAt");
    assert!((1000.0..3000.0).contains(&wait), "a 500 item retries on the backoff: {wait}");
    for q in [72, 73, 74] {
        assert_eq!(backend(q), None);
    }
    assert_eq!(srv.live().len(), 2, "the faulted items were not stored");
    let st = o.stats("u1").await;
    assert_eq!((num(&st, "completed"), num(&st, "failed"), num(&st, "gaveUp"), num(&st, "retrying")), (2.0, 3.0, 1.0, 2.0));
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn an_answer_that_is_not_a_complete_result_list_completes_nothing() {
    let db = fresh_db("batch-incomplete");
    // `st.mode` makes every batch answer incomplete in that way (the items are stored first, as a
    // server that answered and then lost the rest would have).
    let srv = Server::new("(req, st) => req.path.endsWith('/batch') && st.mode ? { [st.mode]: true } : undefined", "");
    let o = Ob::open(&db, &cfg(r#""backoffMs": [60000]"#)).await;
    o.start("u1");
    let mut all = Vec::new();
    for (round, mode) in ["dropLast", "notJson", "cut"].into_iter().enumerate() {
        set(&srv.st, "mode", &s(mode));
        o.stop();
        let ids = save_many(&o, "u1", 3, 100.0 * (round + 1) as f64).await;
        o.start("u1");
        let event_ids: Vec<String> = {
            let mut v = Vec::new();
            for id in &ids {
                v.push(string(&o.events_of("u1", id).await[0], "id"));
            }
            v
        };
        let what = format!("{mode}: the batch to fail");
        eventually(3000, &what, || async {
            let evs = o.events("u1").await;
            event_ids.iter().all(|id| evs.iter().any(|e| string(e, "id") == *id && string(e, "status") == "failed"))
        })
        .await;
        for id in &event_ids {
            let e = o.event("u1", id).await;
            assert_eq!(get(&e, "gaveUp").as_bool(), Some(false), "{mode}: retried, not given up");
            assert!(get(&e, "completedAt").is_null(), "{mode}: nothing completed");
            let msg = string(&e, "errorMessage");
            assert!(msg.contains("batch"), "{mode}: {msg}");
        }
        for e in o.entries_of("u1").await.iter().filter(|e| ids.contains(&string(e, "id"))) {
            assert!(get(e, "backendId").is_null(), "{mode}: no backend id from an incomplete answer");
        }
        let stored = srv.live().len();
        assert_eq!(stored, all.len() + 3, "{mode}: the server did store them");

        // The server answers whole again: the same keys are replayed, nothing is stored twice.
        set(&srv.st, "mode", &JsValue::NULL);
        let list: js_sys::Array = event_ids.iter().map(|i| s(i)).collect();
        o.ok("resetForRetry", &[list.into()]).await;
        let what = format!("{mode}: the retry to succeed");
        eventually(3000, &what, || async {
            let evs = o.events("u1").await;
            event_ids.iter().all(|id| evs.iter().any(|e| string(e, "id") == *id && string(e, "status") == "completed"))
        })
        .await;
        assert_eq!(srv.live().len(), stored, "{mode}: replayed by key, not stored again");
        for id in &ids {
            let recs = srv.by_local(id);
            assert_eq!(recs.len(), 1, "{mode}: entry stored once");
            let e = o.entries_of("u1").await.into_iter().find(|e| string(e, "id") == *id).unwrap();
            assert_eq!(string(&e, "backendId"), string(&recs[0], "id"), "{mode}: the id of the first (replayed) answer");
        }
        all.extend(ids);
    }
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_batch_holds_at_most_one_event_per_entry_and_carries_every_operation() {
    let db = fresh_db("batch-ops");
    let srv = Server::new("", "");
    let o = Ob::open(&db, &cfg("")).await;
    let a = string(&o.save("mood", 3.0, r#"{"userId": "u1"}"#).await, "id");
    let b = string(&o.save("mood", 4.0, r#"{"userId": "u1"}"#).await, "id");
    o.start("u1");
    o.drained("u1", Some(2), 3000).await;
    assert_eq!(srv.batch_sizes(), [2]);
    o.stop();
    o.update(&a, r#"{"quantity": 5}"#).await;
    o.update(&a, r#"{"quantity": 6}"#).await;
    o.delete(&b).await;
    let c = string(&o.save("mood", 7.0, r#"{"userId": "u1"}"#).await, "id");
    o.start("u1");
    o.drained("u1", Some(6), 3000).await;
    let batches = srv.batches();
    assert_eq!(srv.requests().len(), batches.len(), "everything went in batches");
    for batch in &batches {
        let mut locals: Vec<String> = items(batch).iter().map(|i| string(i, "localId")).collect();
        let total = locals.len();
        locals.sort();
        locals.dedup();
        assert_eq!(locals.len(), total, "one event per entry per batch: {}", show(&get(batch, "body")));
    }
    let a_backend = string(&srv.by_local(&a)[0], "id");
    let b_backend = string(&srv.by_local(&b)[0], "id");
    let flat: Vec<(usize, String, String, Option<String>, f64)> = batches
        .iter()
        .enumerate()
        .flat_map(|(i, batch)| {
            items(batch).into_iter().map(move |it| (i, string(&it, "localId"), string(&it, "operation"), opt_string(&it, "backendId"), num(&it, "quantity")))
        })
        .collect();
    let find = |local: &str, op: &str, q: f64| {
        flat.iter().find(|f| f.1 == local && f.2 == op && f.4 == q).cloned().unwrap_or_else(|| panic!("no {op} of {local} ({q}) in {flat:?}"))
    };
    let u1 = find(&a, "update", 5.0);
    let u2 = find(&a, "update", 6.0);
    let d = find(&b, "delete", 4.0);
    let cr = find(&c, "create", 7.0);
    assert!(u1.0 < u2.0, "the second update of an entry goes in a later batch than the first");
    assert_eq!((u1.3.as_deref(), u2.3.as_deref(), d.3.as_deref()), (Some(a_backend.as_str()), Some(a_backend.as_str()), Some(b_backend.as_str())));
    assert_eq!(cr.3, None);
    // The server's state is the device's.
    let rec_a = srv.record(&a_backend);
    assert_eq!(num(&rec_a, "quantity"), 6.0);
    assert_eq!(get(&srv.record(&b_backend), "deleted").as_bool(), Some(true));
    assert_eq!(srv.by_local(&c).len(), 1);
    let mut device: Vec<(String, f64)> = o.entries_of("u1").await.iter().map(|e| (string(e, "backendId"), num(e, "quantity"))).collect();
    let mut server: Vec<(String, f64)> = srv.live().iter().map(|r| (string(r, "id"), num(r, "quantity"))).collect();
    device.sort_by(|x, y| x.0.cmp(&y.0));
    server.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(device, server);
    assert!(raw(&db, "tombstones").await.is_empty());
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn the_batch_size_shrinks_on_413_and_timeouts_and_grows_back_after_fast_answers() {
    let db = fresh_db("batch-adaptive");
    // Batch 1: 413. Batch 2: no answer (times out). Batch 3: held until the test has looked.
    let srv = Server::new(
        "(req, st) => {
            if (!req.path.endsWith('/batch')) return;
            st.nb = (st.nb || 0) + 1;
            if (st.nb === 1) return { status: 413, body: { error: 'too large' } };
            if (st.nb === 2) return { hang: true };
            if (st.nb === 3) return { hold: 'third' };
        }",
        "",
    );
    let o = Ob::open(&db, &cfg(r#""maxBatchEvents": 20, "maxConcurrent": 1, "requestTimeoutMs": 300, "backoffMs": [10]"#)).await;
    let initial = num(&o.stats("u1").await, "batchEvents");
    assert_eq!(initial, 10.0, "a batch starts small: min(10, maxBatchEvents)");
    save_many(&o, "u1", 40, 1.0).await;
    o.start("u1");
    eventually(5000, "the third batch", || async { srv.held("third") == 1 }).await;
    let sizes = srv.batch_sizes();
    assert_eq!(sizes[0], 10);
    assert!(sizes[1] < sizes[0], "shrank after the 413: {sizes:?}");
    assert!(sizes[2] < sizes[1], "shrank after the timeout: {sizes:?}");
    assert_eq!(num(&o.stats("u1").await, "batchEvents"), sizes[2] as f64, "stats() shows the current size");
    srv.release("third");
    o.drained("u1", Some(40), 10000).await;
    let sizes = srv.batch_sizes();
    let low = sizes[2];
    let later = &sizes[3..];
    assert!(later.iter().any(|&x| x > low), "grew back after fast answers: {sizes:?}");
    assert!(sizes.iter().all(|&x| x <= 20), "never more than maxBatchEvents: {sizes:?}");
    let now_size = num(&o.stats("u1").await, "batchEvents");
    assert!(now_size > low as f64, "stats().batchEvents grew back: {now_size} after {sizes:?}");
    assert_eq!(srv.live().len(), 40);
    finish(&db, &[&o]).await;
}

/// A server that takes at most 12 events per batch (413 above): a 413 is no verdict on the events
/// in it. Before, each 413 cost every item in the batch one of its `maxAttempts`, and the size
/// kept growing back past the limit, so events the server accepts gave up (probe: 22 of 300).
#[wasm_bindgen_test]
async fn a_servers_batch_limit_costs_no_attempts_and_the_size_stays_under_it() {
    let db = fresh_db("batch-limit");
    let srv = Server::new(
        "(req) => {
            if (req.path.endsWith('/batch') && req.body.events.length > 12) return { status: 413, body: { error: 'at most 12 events' } };
        }",
        "",
    );
    let o = Ob::open(&db, &cfg(r#""maxBatchEvents": 100, "maxConcurrent": 3, "maxAttempts": 2, "backoffMs": [10000]"#)).await;
    save_many(&o, "u1", 150, 1.0).await;
    o.start("u1");
    o.drained("u1", Some(150), 20000).await;
    for e in o.events("u1").await {
        assert_eq!(num(&e, "attemptCount"), 0.0, "a 413 to the batch is not the event's failure: {e:?}");
    }
    let sizes = srv.batch_sizes();
    let refused = sizes.iter().filter(|&&n| n > 12).count();
    assert!(refused <= 6, "the size settles under the server's limit, not overshooting it again and again: {sizes:?}");
    assert!(sizes.iter().rev().take(3).all(|&n| n <= 12), "{sizes:?}");
    assert!(num(&o.stats("u1").await, "batchEvents") <= 12.0);
    assert_eq!(srv.live().len(), 150);
    assert_eq!(string(&o.stats("u1").await, "health"), "ok", "too big a batch is no failed answer for health");
    finish(&db, &[&o]).await;
}

/// A 413 to a batch of one event says that event is too big, as on the single endpoint, which
/// refuses it at once (CONTRACT §2: other 4xx). It was counted and retried instead (sent three
/// times, then given up; probe T, MED-2), and a later correction of the entry waited for it.
#[wasm_bindgen_test]
async fn a_413_to_a_batch_of_one_event_refuses_that_event_at_once() {
    let db = fresh_db("batch-413-one");
    let srv = Server::new(
        "(req) => {
            if (req.path.endsWith('/batch') && req.body.events.some((e) => e.quantity === 99999)) return { status: 413, body: { error: 'too large' } };
        }",
        "",
    );
    let o = Ob::open(&db, &cfg(r#""maxBatchEvents": 10, "maxAttempts": 3, "backoffMs": [100]"#)).await;
    save_many(&o, "u1", 4, 1.0).await;
    let big = string(&o.save("steps", 99999.0, r#"{"userId": "u1"}"#).await, "id");
    o.start("u1");
    eventually(10000, "the big one refused, the others completed", || async {
        let evs = o.events("u1").await;
        evs.iter().filter(|e| string(e, "status") == "completed").count() == 4 && evs.iter().any(|e| get(e, "gaveUp") == JsValue::TRUE)
    })
    .await;
    let e = o.events_of("u1", &big).await.remove(0);
    assert_eq!(get(&e, "gaveUp"), JsValue::TRUE, "{e:?}");
    assert_eq!(num(&e, "attemptCount"), 1.0, "refused at its first answer: {e:?}");
    assert!(string(&e, "errorMessage").contains("413"), "{e:?}");
    let alone = srv.batches().iter().filter(|b| items(b).len() == 1 && num(&items(b)[0], "quantity") == 99999.0).count();
    assert_eq!(alone, 1, "sent alone once: {:?}", srv.batch_sizes());
    // Corrected, it goes (the update folds into the refused create, sent once more as a create).
    o.update(&big, r#"{"quantity": 9999}"#).await;
    o.drained("u1", None, 10000).await;
    assert!(o.events_of("u1", &big).await.iter().all(|e| string(e, "status") == "completed"), "{:?}", o.events_of("u1", &big).await);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn save_data_or_a_2g_link_means_one_request_in_flight_and_small_batches() {
    let db = fresh_db("batch-network");
    // The first batch is answered only once a second one has arrived (several in flight at once);
    // in the constrained rounds the first batch takes 300 ms (time for a second one to be sent, if
    // the outbox would).
    let srv = Server::new(
        "(req, st) => {
            if (!req.path.endsWith('/batch')) return;
            st.nb = (st.nb || 0) + 1;
            if (st.nb === 1) return { hold: 'first' };
            if (st.nb === 2) st.release('first');
            if (st.slowNext) { st.slowNext = false; return { delayMs: 300 }; }
            return { delayMs: 20 };
        }",
        "",
    );
    let o = Ob::open(&db, &cfg(r#""maxBatchEvents": 40, "maxConcurrent": 3, "requestTimeoutMs": 10000"#)).await;
    // Unconstrained: the size grows past 10 and several batches fly at once.
    save_many(&o, "u1", 100, 1.0).await;
    o.start("u1");
    o.drained("u1", Some(100), 15000).await;
    let sizes = srv.batch_sizes();
    assert!(sizes.iter().any(|&x| x > 10), "the size grew past 10 on a fast link: {sizes:?}");
    assert!(srv.max_in_flight() > 1, "several batches in flight on a fast link: {sizes:?}");
    let grown = num(&o.stats("u1").await, "batchEvents");
    assert!(grown > 10.0);

    let mut total = 100;
    for (connection, what) in [
        (r#"{"saveData": true, "effectiveType": "4g"}"#, "saveData"),
        (r#"{"saveData": false, "effectiveType": "2g"}"#, "2g"),
        (r#"{"effectiveType": "slow-2g"}"#, "slow-2g"),
    ] {
        set_connection(&json(connection));
        o.stop();
        let seen = srv.batches().len();
        save_many(&o, "u1", 30, 1.0).await;
        total += 30;
        srv.reset_in_flight();
        set(&srv.st, "slowNext", &JsValue::TRUE);
        o.start("u1");
        o.drained("u1", Some(total), 15000).await;
        let sizes: Vec<u32> = srv.batch_sizes()[seen..].to_vec();
        assert!(!sizes.is_empty());
        assert!(sizes.iter().all(|&x| x <= 10), "{what}: batches of at most 10: {sizes:?}");
        assert_eq!(srv.max_in_flight(), 1, "{what}: one request in flight");
    }
    assert_eq!(srv.live().len(), total);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn without_batch_endpoint_every_event_is_its_own_request() {
    let db = fresh_db("batch-none");
    let srv = Server::new("", "");
    let o = Ob::open(&db, r#"{"maxBatchEvents": 50}"#).await;
    assert!(get(&o.stats("u1").await, "batchEvents").is_null(), "no batch size without batchEndpoint");
    let ids = save_many(&o, "u1", 4, 10.0).await;
    o.start("u1");
    o.drained("u1", Some(4), 3000).await;
    assert!(srv.batches().is_empty());
    let posts = srv.of("POST");
    assert_eq!(posts.len(), 4);
    for p in &posts {
        assert!(string(p, "path").ends_with("/api/v1/progress"));
        let body = get(p, "body");
        let ev = o.events_of("u1", &string(&body, "localId")).await.remove(0);
        assert_eq!(string(p, "key"), string(&ev, "id"), "the key travels as the Idempotency-Key header");
        assert!(get(&body, "idempotencyKey").is_undefined() && get(&body, "operation").is_undefined(), "no batch fields in a single request");
    }
    assert_eq!(srv.live().len(), ids.len());
    finish(&db, &[&o]).await;
}
